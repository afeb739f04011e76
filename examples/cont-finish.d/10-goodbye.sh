# cont-finish.d runs at shutdown, after the CMD has stopped, whatever ended
# the container (a signal, the CMD's exit, a failed step).
echo "cont-finish: saying goodbye; carried DEMO_GREETING=$DEMO_GREETING"
