/* Unit tests for vm/: names and the accelerator rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"
#include "vm.h"

static void test_names(void **state)
{
	static const char *const good[] = {
		"default", "a", "web-1", "a0", "abcdefghijabcdefghijabcdefghijab",
	};
	static const char *const bad[] = {
		"", "1vm", "-vm", "Vm", "vm_1", "vm.1", "vm/..", "vm 1", "vm\n",
		"abcdefghijabcdefghijabcdefghijabc", "é",
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(good); i++)
		assert_int_equal(vm_name_check(good[i]), 0);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		char *err;

		stderr_begin();
		assert_int_equal(vm_name_check(bad[i]), -1);
		err = stderr_end();
		assert_true(!strncmp(err, "nook: ", 6));
		free(err);
	}
}

static void test_cpuinfo(void **state)
{
	(void)state;
	assert_true(vm_cpuinfo_has_virt("processor\t: 0\nflags\t\t: fpu vme "
					"vmx sse\n"));
	assert_true(vm_cpuinfo_has_virt("flags\t\t: fpu svm\n"));
	assert_false(vm_cpuinfo_has_virt("flags\t\t: fpu vmxe svmx sse\n"));
	assert_false(vm_cpuinfo_has_virt("model name\t: vmx svm\n"
					 "flags\t\t: fpu sse\n"));
	assert_false(vm_cpuinfo_has_virt(""));
}

static void test_accel_decide(void **state)
{
	struct vm_accel_facts all = { 1, 1, 1, 1 };
	struct vm_accel_facts f;
	const char *why;

	(void)state;
	assert_int_equal(vm_accel_decide(&all, &why), VM_ACCEL_KVM);
	/* each missing fact alone means TCG, and the reason names it */
	f = all; f.kvm_present = 0; f.kvm_rw = 0;
	assert_int_equal(vm_accel_decide(&f, &why), VM_ACCEL_TCG);
	assert_non_null(strstr(why, "does not exist"));
	f = all; f.kvm_rw = 0;
	assert_int_equal(vm_accel_decide(&f, &why), VM_ACCEL_TCG);
	assert_non_null(strstr(why, "readable and writable"));
	f = all; f.cpu_virt = 0; /* the case of these build machines */
	assert_int_equal(vm_accel_decide(&f, &why), VM_ACCEL_TCG);
	assert_non_null(strstr(why, "vmx nor svm"));
	f = all; f.qemu_kvm = 0;
	assert_int_equal(vm_accel_decide(&f, &why), VM_ACCEL_TCG);
	assert_non_null(strstr(why, "kvm accelerator"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_cpuinfo),
		cmocka_unit_test(test_accel_decide),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
