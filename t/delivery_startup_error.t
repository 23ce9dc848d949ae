# Supervision (issue 14): a dispatcher that cannot start logs why (one tagged
# line), exits with OWH_DISPATCHER_STARTUP_ERROR and is not respawned, as
# mod_cgid's DAEMON_STARTUP_ERROR, while httpd and its API go on; the next
# graceful restart starts one again. The cause here: a schema newer than this
# module (another host's newer module migrated it), met by a dispatcher that
# starts after that, e.g. one respawned after a crash. Before, it retried
# forever, one warn line every few seconds.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use lib 't/lib';
use OWHDelivery;

my $db = new_database();
my $sink = start_sink();
my $h = start_httpd(conninfo => $db);
my $tok = token('res-su', ['octo:read.webhooks', 'octo:write.webhooks'], db => $db);
my $hook = api('POST', '/webhooks', base => $h->base, token => $tok,
               json => { event => 'product_update', url => $sink->url('/su') })->{json}{id};
ok($hook, 'a webhook');
my $first = $h->dispatcher_pid;
ok($first, "a dispatcher runs ($first)");
my $count = sub { my $tag = shift; scalar(() = $h->error_log =~ /OWH$tag: /g) };

# another host's newer module migrated the database; then this dispatcher dies
q_at($db, q{INSERT INTO octo_webhooks.schema_migrations (version, name, checksum) VALUES (999, '999_future', 'x')});
kill 'KILL', $first;
ok(wait_until(sub { $count->('00509') }, 30), 'the parent gives up on it: "not restarting it"')
    or diag($h->error_log);
my $log = $h->error_log;
is($count->('00514'), 1, 'the respawned dispatcher said why it cannot start, once');
like($log, qr/\[octo_webhooks:crit\] .*OWH00514: dispatcher: cannot start on this database: schema octo_webhooks is at migration 999, newer than this module/,
     'at crit, naming the cause');
is($count->('00503'), 0, 'no "database unavailable" retries');
is($count->('00501'), 1, 'one respawn (after the kill), none after the startup error');
# a respawn would be forked at once (its backoff runs in the child) and listed
ok(!wait_until(sub { $h->dispatcher_pid }, 4), 'no dispatcher runs afterwards');
is($count->('00501') + $count->('00509'), 2, 'and the parent logged nothing more about it');
ok(kill(0, $h->pid), 'httpd runs on');
ok($h->status, 'its status handler answers');

# the operator puts the database right: the API works without a dispatcher,
# and the next graceful restart starts one, which delivers
q_at($db, q{DELETE FROM octo_webhooks.schema_migrations WHERE version = 999});
ok(wait_until(sub { api('GET', "/webhooks/$hook", base => $h->base, token => $tok)->{code} == 200 }, 10),
   'the API answers meanwhile');
emit($db, 'product_update', { id => 'p-su' });
$h->graceful;
ok($h->dispatcher_pid, 'a graceful restart starts a dispatcher again');
ok($sink->wait_for(path => '/su', count => 1, timeout => 20), 'and it delivers what was emitted meanwhile');
is($count->('00514'), 1, 'with no further startup error');
done_testing();
