# The API's database pool in /octo-metrics: with OctoWebhooksPoolMax 1 and
# the only connection held by a request stuck on a lock, the next requests
# find the pool exhausted (octo_webhooks_db_pool_waits_total) and, after
# OctoWebhooksPoolWait, are answered 503 (octo_webhooks_db_pool_timeouts_total);
# every line still parses with the reference Prometheus parser.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use lib 't/lib';
use OWHDelivery;
use JSON::PP ();
use IPC::Open2 qw(open2);
use POSIX ();
use Time::HiRes qw(time sleep);

my $JSON = JSON::PP->new;
my $db = new_database();
# one child of ten threads, so every request shares the one connection
my $h = start_httpd(conninfo => $db, directives => join("\n",
    'OctoWebhooksDispatcher Off', 'OctoWebhooksPoolMax 1', 'OctoWebhooksPoolKeep 1', 'OctoWebhooksPoolWait 1s',
    'OctoWebhooksListCacheTTL 0',       # every GET list goes to the database (and its lock)
    'ServerLimit 1', 'MaxRequestWorkers 10', 'MinSpareThreads 1', 'MaxSpareThreads 10'));
my $tok = token('res-pool', ['octo:read.webhooks', 'octo:write.webhooks'], db => $db);
is(api('GET', '/webhooks', base => $h->base, token => $tok)->{code}, 200, 'the API answers');

sub pool {
    my $m = prom_parse($h->metrics);
    ok($m, 'the reference parser reads /octo-metrics');
    return map { prom_value($m, "octo_webhooks_db_pool_${_}_total") } qw(acquires waits timeouts);
}

my ($acq0, $waits0, $timeouts0) = pool();
is($waits0, 0, 'no pool waits yet');
is($timeouts0, 0, 'no pool timeouts yet');
ok($acq0 >= 1, "acquires counted ($acq0)");

# A request in a forked child: its HTTP status as the exit code / 100
# (POSIX::_exit: the child must not run the parent's END blocks).
sub request_bg {
    my $pid = fork // die "fork: $!";
    return $pid if $pid;
    my $r = eval { api('GET', '/webhooks', base => $h->base, token => $tok, openapi => 0) };
    POSIX::_exit($r ? int($r->{code} / 100) : 9);
}
sub waitfor {
    my ($pid) = @_;
    waitpid($pid, 0);
    return $? >> 8;
}

# Hold an exclusive lock on the webhooks table in a session of our own.
my $lockpid = open2(my $lout, my $lin, 'psql', '-X', '-q', '-A', '-t', '-d', $db);
print $lin "BEGIN;\nLOCK TABLE octo_webhooks.webhooks IN ACCESS EXCLUSIVE MODE;\nSELECT 'locked';\n";
$lin->flush;
my $line = <$lout>;
like($line // '', qr/locked/, 'a session holds a lock on the webhooks table');

my $first = request_bg();
ok(wait_until(sub { q_at($db, q{SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'
                                   AND query LIKE '%webhooks%'})->[0][0] >= 1 }, 10),
   'the first request holds the only connection, waiting on the lock');
my $t0 = time;
my @more = map { request_bg() } 1 .. 3;
my @codes = map { waitfor($_) } @more;
my $took = time - $t0;
is_deeply(\@codes, [5, 5, 5], 'the next three are answered 503 (pool exhausted)');
ok($took >= 0.9 && $took < 8, sprintf('after OctoWebhooksPoolWait (%.1f s for all three)', $took));
print $lin "COMMIT;\n\\q\n";
close $lin;
waitpid($lockpid, 0);
is(waitfor($first), 2, 'the first one answers 200 once the lock goes');

my ($acq1, $waits1, $timeouts1) = pool();
is($waits1 - $waits0, 3, 'octo_webhooks_db_pool_waits_total rose by 3');
is($timeouts1 - $timeouts0, 3, 'octo_webhooks_db_pool_timeouts_total rose by 3');
ok($acq1 - $acq0 >= 4, 'acquires counted every try (' . ($acq1 - $acq0) . ')');
my $st = $h->status;
is($st->{dbPool}{timeouts}, $timeouts1, 'status JSON: the same timeouts');
is(api('GET', '/webhooks', base => $h->base, token => $tok)->{code}, 200, 'the pool serves again');
done_testing();
