#!/bin/sh
# helix-init: timeout=-5
echo hi
