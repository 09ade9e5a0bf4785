#include <stdio.h>

int main(void)
{
	puts("hello from a build script");
	return 0;
}
