echo hello from the shell
free -m
ls /proc
spin &
#>wait spin: pid
ps
kill %1
wait
cat /proc/buddyinfo
exit
