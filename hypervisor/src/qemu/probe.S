# The accelerator probe: a boot sector that SeaBIOS loads at 0x7c00 and runs in real mode.
# It waits for five BIOS timer ticks (IRQ 0 bumps the word at 0040:006c 18.2 times a second),
# so it finishes only where the accelerator runs guest code, delivers interrupts and keeps
# time; then it writes a line to COM1 and ends QEMU through isa-debug-exit at port 0xf4,
# which exits with (0x21 << 1) | 1 = 67.
# Rebuild: as --32 -o probe.o probe.S && ld -m elf_i386 -Ttext=0x7c00 --oformat=binary -o probe.bin probe.o
    .code16
    .globl _start
_start:
    cli
    xor %ax, %ax
    mov %ax, %ds
    mov %ax, %ss
    mov $0x7c00, %sp
    sti
    mov 0x46c, %bx
    add $5, %bx
wait:
    hlt
    cmp 0x46c, %bx
    jns wait
    mov $message, %si
    mov $0x3f8, %dx
print:
    lodsb
    test %al, %al
    jz done
    out %al, %dx
    jmp print
done:
    mov $0xf4, %dx
    mov $0x21, %al
    out %al, %dx
halt:
    hlt
    jmp halt
message:
    .asciz "XENCIM-PROBE ok\n"
    .org 510
    .word 0xaa55
