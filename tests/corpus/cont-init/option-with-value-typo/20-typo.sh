# helix-init: timout=30
echo hi
