#!/bin/sh
. "$(dirname "$0")/greet.sh"
[ "$(hello x)" = "hello, x" ] || { echo "wrong greeting"; exit 1; }
