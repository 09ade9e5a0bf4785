#!/bin/sh
cat /usr/share/greeter/greeting
