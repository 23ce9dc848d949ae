# The C unit tests of src/owh_listcache.c (TAP from t/unit/test_listcache).
use strict;
use warnings;
my $bin = "$ENV{OWH_SRCDIR}/t/unit/test_listcache";
if (!-x $bin) { print "1..1\nnot ok 1 - $bin is built (make unit)\n"; exit 1 }
exec $bin or die "exec $bin: $!";
