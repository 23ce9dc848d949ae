# The C unit tests of src/owh_listcache.c (TAP from t/unit/test_listcache).
use strict;
use warnings;
my $bin = "$ENV{OWH_SRCDIR}/t/unit/test_listcache";
if (!-x $bin) { print "1..1\nnot ok 1 - $bin is built (make unit)\n"; exit 1 }
# (its threads exit: GCC 12's AddressSanitizer misreports the exit of a thread
# on an alternate signal stack, as bin/owh's httpd wrapper says too)
$ENV{ASAN_OPTIONS} = join(':', grep { length } $ENV{ASAN_OPTIONS} // '', 'use_sigaltstack=0');
exec $bin or die "exec $bin: $!";
