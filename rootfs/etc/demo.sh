# /etc/demo.sh: the README's walkthrough as a script. `cargo run` plays it when its
# standard input is not a terminal (CI, a pipe); tests/walkthrough.rs runs it and
# checks each step. Type the same lines at the shell to follow along.
echo == 1. memory before: free -m
free -m
echo == 2. a memory hog in the background, bigger than RAM: it must swap
hog 125% &
sleep 2
echo == 3. vmstat 1 while it swaps: si/so are pages in and out of swap
vmstat 1 3
free -m
echo == 4. the hog's memory, VMA by VMA: pmap -x
pmap -x $!
echo == 5. one page of the hog: the page-table walk and the next fault there
explain 0x100000000000 $!
echo == 6. the replacement policy, switched at run time
policy
policy fifo
echo == 7. physical memory, one character per block of frames
memmap -n
echo == 8. the hog's faults as they happen
trace on
sleep 1
trace off
trace show $!
echo == 9. kill it: every frame and swap slot comes back
kill $!
wait
free -m
policy clock
echo == 10. a file mapped, written through the mapping, written back, read again
mmapdemo
