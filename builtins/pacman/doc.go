// Package pacman installs Arch Linux packages natively.
package pacman
