package main

import (
	"fmt"

	"example.com/app/internal/greet"
)

var version = "dev"

func main() {
	fmt.Println(greet.Hello("CI farm"), version)
}
