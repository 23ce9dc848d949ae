# The plpgsql on its own: every t/sql/*.sql is a pgTAP script (Debian's
# postgresql-15-pgtap) run by psql in a database the module migrated; each of
# its assertions becomes one test here.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use lib 't/lib';
use OWHDelivery;

my $db = new_database();
start_httpd(conninfo => $db, directives => 'OctoWebhooksDispatcher Off')->stop;   # the module migrates
q_at($db, 'CREATE SCHEMA tap');
q_at($db, 'CREATE EXTENSION pgtap SCHEMA tap');

for my $script (sort glob("$ENV{OWH_SRCDIR}/t/sql/*.sql")) {
    my ($name) = $script =~ m{([^/]+)\.sql$};
    open(my $fh, '-|', 'psql', '-X', '-q', '-d', $db, '-f', $script) or die "psql: $!";
    my ($planned, $ran, $last) = (undef, 0, undef);
    while (my $line = <$fh>) {
        chomp $line;
        if ($line =~ /^1\.\.(\d+)$/) { $planned = $1 }
        elsif ($line =~ /^(not )?ok (\d+) - (.*)$/) {
            $ran++;
            ok(!$1, "$name: $3");
        }
        elsif ($line =~ /^#/) { diag($line) }
    }
    close $fh;
    is($?, 0, "$name: psql ran the whole script");
    is($ran, $planned, "$name: as many assertions as planned");
}
done_testing();
