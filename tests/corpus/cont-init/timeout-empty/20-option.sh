# helix-init: timeout=
echo hi
