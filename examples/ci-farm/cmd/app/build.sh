#!/bin/sh
# The stand-in compiler: links the greet library and main into one program, version baked in.
echo '#!/bin/sh'
echo "VERSION='$1'"
cat internal/greet/greet.sh cmd/app/main.sh
