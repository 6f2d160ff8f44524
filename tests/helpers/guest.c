/* guest: a freestanding x86 guest that dirties as many pages as it is told.
 *
 * Built with gcc -m32 -ffreestanding into a multiboot ELF that QEMU boots
 * with -kernel.  It runs in 32-bit protected mode without paging, so guest
 * physical addresses are used directly.  The test shares the guest's RAM
 * through a memory-backend-file and paces it through a mailbox at 4 MiB:
 * it raises `target`, the guest writes the next pages of the region until
 * `done` reaches it, in order and cycling, then publishes `done`.  The
 * guest's own writes are what KVM's dirty log sees, so the test knows
 * exactly how many distinct pages were dirtied in any interval.
 */
#include <stdint.h>

#define MAILBOX_ADDR  0x400000u
#define MAILBOX_MAGIC 0x6d656d73u /* "mems" */
#define PAGE	      4096u

struct mailbox {
	volatile uint32_t magic;	/* the guest sets it when it runs */
	volatile uint32_t region_start; /* physical address, page aligned */
	volatile uint32_t region_pages;
	volatile uint32_t target; /* pages to have written in all */
	volatile uint32_t done;	  /* pages written so far */
};

/* The multiboot header: magic, flags (none), checksum. */
__attribute__((section(".multiboot"), aligned(4),
	       used)) static const uint32_t multiboot_header[3] = {0x1BADB002u, 0u,
								   (uint32_t) - (0x1BADB002u + 0u)};

uint8_t guest_stack[16384] __attribute__((aligned(16)));

void guest_main(void);

__attribute__((naked, noreturn, used)) void _start(void)
{
	__asm__("mov $guest_stack + 16384, %esp\n\t"
		"call guest_main\n"
		"1: hlt\n\t"
		"jmp 1b\n");
}

void guest_main(void)
{
	struct mailbox *mb = (struct mailbox *)MAILBOX_ADDR;
	uint32_t done = 0;

	mb->done = 0;
	mb->magic = MAILBOX_MAGIC;
	for (;;) {
		uint32_t target = mb->target, pages = mb->region_pages;
		/* Counters wrap: compare their difference. */
		if ((int32_t)(target - done) <= 0 || pages == 0) {
			__asm__ volatile("pause");
			continue;
		}
		uint32_t start = mb->region_start;
		while ((int32_t)(target - done) > 0) {
			volatile uint32_t *p = (volatile uint32_t *)(start + (done % pages) * PAGE);
			*p = done + 1; /* new content, for samplers that hash */
			done++;
			if (done % 256 == 0)
				mb->done = done;
		}
		mb->done = done;
	}
}
