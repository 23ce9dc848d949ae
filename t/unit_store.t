# The C unit test of src/owh_store.c's teardown (TAP from t/unit/test_store),
# against the test database.
use strict;
use warnings;
my $bin = "$ENV{OWH_SRCDIR}/t/unit/test_store";
if (!-x $bin) { print "1..1\nnot ok 1 - $bin is built (make unit)\n"; exit 1 }
exec $bin or die "exec $bin: $!";
