# helix-init: timeout=soon
echo hi
