# helix-init: optinal
echo hi
