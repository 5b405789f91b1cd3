/*
 * true_c: does nothing and exits 0; the program exectest's fork+exec+wait
 * benchmark starts (the smallest static musl program).
 */
int main(void) {
    return 0;
}
