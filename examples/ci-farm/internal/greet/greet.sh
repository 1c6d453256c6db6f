# hello NAME: greets NAME.
hello() { echo "hello, $1"; }
