/* placeholder */ int sim__placeholder(void); int sim__placeholder(void) { return 0; }
