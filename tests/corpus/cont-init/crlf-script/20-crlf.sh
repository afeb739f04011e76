echo hi
echo there
