# owh_store_migrate_status() and owh_store_schema_check() from C (what the
# `octo-webhooks migrate` command and OctoWebhooksMigrate Off run), on an empty
# database of the test cluster (TAP from t/unit/test_migrate).
use strict;
use warnings;
use lib 't/lib';
use OWHDelivery ();
my $bin = "$ENV{OWH_SRCDIR}/t/unit/test_migrate";
if (!-x $bin) { print "1..1\nnot ok 1 - $bin is built (make unit)\n"; exit 1 }
exec $bin, OWHDelivery::new_database() or die "exec $bin: $!";
