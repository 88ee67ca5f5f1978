package main

const sysSetns = 308 // Go 1.19's syscall package has no SYS_SETNS for amd64
