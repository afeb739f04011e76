# helix-init: optional timeout=10
# A sourced-style script that ends with a top-level `return` (valid only when
# sourced), and relies on a variable an earlier script exported. The header
# above marks it optional (a failure only warns) and gives it 10 seconds.
echo "I see DEMO_GREETING=$DEMO_GREETING"
export DEMO_LEVEL=1
return
echo "not reached: return ended the script"
