# Least privilege: the module runs as a member of octo_webhooks_runtime with
# OctoWebhooksMigrate Off (the owner migrated) and serves the API and delivers
# with DML alone; it cannot create, alter or drop. A member of
# octo_webhooks_emitter can emit() and do nothing else: no webhooks (signing
# secrets), tokens, events, deliveries or attempts.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use lib 't/lib';
use OWHDelivery;
use File::Temp ();
use POSIX qw(strftime);

my $db = new_database();                           # as the owner (the test cluster's superuser)
my $o = start_httpd(conninfo => $db, directives => 'OctoWebhooksDispatcher Off');   # migrates
$o->stop;

my ($rt, $em) = ("owh_rt_$$", "owh_em_$$");
q_at($db, "CREATE ROLE $rt LOGIN IN ROLE octo_webhooks_runtime");
q_at($db, "CREATE ROLE $em LOGIN IN ROLE octo_webhooks_emitter");
(my $rt_db = $db) =~ s/user=\S+/user=$rt/;
(my $em_db = $db) =~ s/user=\S+/user=$em/;

# psql as a role: '' on success, else the error text
sub try_sql {
    my ($ci, $sql) = @_;
    my $f = File::Temp->new(SUFFIX => '.sql');
    print $f "$sql;\n";
    close $f;
    my $out = `psql -X -q -v ON_ERROR_STOP=1 -d '$ci' -f '$f' 2>&1 >/dev/null`;
    return $? == 0 ? '' : ($out || 'failed');
}
my $denied = qr/permission denied|must be owner/;

# ---- the emitter ----------------------------------------------------------------
my $h = start_httpd(conninfo => $rt_db, directives => join("\n",
    'OctoWebhooksMigrate Off', 'OctoWebhooksRetrySchedule 200ms 200ms', 'OctoWebhooksWebhookRate 50'));
like($h->error_log, qr/OWH00002: schema octo_webhooks/, 'the runtime role starts the module with Migrate Off');
my $sink = start_sink();
my $tok = token('res-r', ['octo:read.webhooks', 'octo:write.webhooks'], db => $db);   # tokens: the owner's job
$sink->behave('/r', codes => [500, 200]);
my $r = api('POST', '/webhooks', base => $h->base, token => $tok, json => { event => 'booking_update', url => $sink->url('/r') });
is($r->{code}, 200, 'runtime: a webhook is created');
my $id = $r->{json}{id};
$r = api('POST', '/v1/notifications/subscriptions', base => $h->base, token => token('res-r', ['octo:write.notifications', 'octo:read.notifications'], db => $db),
            json => { url => $sink->url('/sub'), notificationTypes => ['BOOKING_UPDATE'] });
is($r->{code}, 201, 'runtime: a subscription is created') or diag($r->{body});
is(try_sql($em_db, q{SELECT octo_webhooks.emit('booking_update', '{"uuid": "b-1", "status": "CONFIRMED"}', 'res-r')}), '',
   'emitter: emit() works');
my $got = $sink->wait_for(path => '/r', count => 2, timeout => 20);
is(scalar @$got, 2, 'runtime: delivered, the failed first attempt retried');
is(scalar @{ $sink->wait_for(path => '/sub', count => 1) }, 1, 'runtime: the subscription got it too');
for my $t (qw(webhooks tokens events deliveries attempts connections object_states schema_migrations)) {
    like(try_sql($em_db, "SELECT * FROM octo_webhooks.$t"), $denied, "emitter cannot read $t");
}
like(try_sql($em_db, q{INSERT INTO octo_webhooks.events (event_type, object_key, object) VALUES ('x', 'y', '{}')}),
     $denied, 'emitter cannot write the outbox directly');
like(try_sql($em_db, q{SELECT * FROM octo_webhooks.claim(10, '1 minute', 'x', 1, 0)}), $denied, 'emitter cannot claim');
like(try_sql($em_db, q{SELECT octo_webhooks.create_token('res-r', '{octo:read.webhooks}')}), $denied,
     'emitter cannot make tokens');
like(try_sql($em_db, q{SELECT octo_webhooks.webhook_snapshot(NULL::octo_webhooks.webhooks)}), $denied,
     'emitter cannot call the functions emit() uses');
like(try_sql($rt_db, q{SELECT octo_webhooks.emit('booking_update', '{"uuid": "b-2"}')}), $denied,
     'emit() is the emitter role\'s only: not even the runtime may call it');
# (its other settings, e.g. enable_seqscan, are the planner's business)
like(q_at($db, q{SELECT prosecdef, array_to_string(proconfig, ';') FROM pg_proc WHERE proname = 'emit'})->[0][1],
     qr/(?:^|;)search_path=pg_catalog, pg_temp(?:;|$)/, 'emit() is SECURITY DEFINER with a fixed search_path');

# ---- the rest of the API as the runtime role --------------------------------------
is(api('GET', '/webhooks', base => $h->base, token => $tok)->{code}, 200, 'runtime: list');
is(api('PATCH', "/webhooks/$id", base => $h->base, token => $tok, json => { retryOnError => JSON::PP::true() })->{code}, 200,
   'runtime: update');
is(api('POST', "/webhooks/$id/secret", base => $h->base, token => $tok)->{code}, 200, 'runtime: secret rotation');
$r = api('GET', "/webhooks/$id/deliveries", base => $h->base, token => $tok);
is($r->{code}, 200, 'runtime: the attempt log');
my $did = $r->{json}{deliveries}[0]{id};
is(api('POST', "/webhooks/$id/deliveries/$did/retry", base => $h->base, token => $tok)->{code}, 200, 'runtime: retry');
is(api('POST', "/webhooks/$id/trigger", base => $h->base, token => $tok)->{code}, 200, 'runtime: trigger');
is(scalar @{ $sink->wait_for(path => '/r', count => 4) }, 4, 'runtime: the retry and the trigger were delivered');
is(api('POST', "/webhooks/$id/recover", base => $h->base, token => $tok,
          json => { since => strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(time - 60)) })->{code}, 200, 'runtime: recover');
$sink->behave('/gone', codes => [410]);
my $gone = api('POST', '/webhooks', base => $h->base, token => $tok, json => { event => 'product_update', url => $sink->url('/gone') })->{json}{id};
is(try_sql($em_db, q{SELECT octo_webhooks.emit('product_update', '{"id": "p-1"}')}), '', 'emitter: another event');
ok(wait_until(sub { q_at($db, 'SELECT NOT active FROM octo_webhooks.webhooks WHERE id = $1', $gone)->[0][0] eq 't' }, 20),
   'runtime: a 410 deactivates the webhook');
ok(wait_until(sub { $h->error_log =~ /OWH00541: webhook disabled: webhook $gone/ }, 10),
   'runtime: its disable notice was written (trigger) and logged');
ok(wait_until(sub { q_at($db, 'SELECT count(*) FROM octo_webhooks.prune_log')->[0][0] > 0 }, 20), 'runtime: prune() ran');
my $st = $h->status;
ok($st && $st->{databaseUp} && defined $st->{queue}{deliveries}{succeeded}, 'runtime: stats() for /octo-status');
is(api('DELETE', "/webhooks/$id", base => $h->base, token => $tok)->{code}, 200, 'runtime: delete');
unlike($h->error_log, qr/permission denied/, 'no permission error anywhere in the log');
for my $t (qw(deliveries events attempts object_states notices maintenance)) {
    like(try_sql($rt_db, "DELETE FROM octo_webhooks.$t"), $denied, "runtime cannot delete from $t (only prune() does)");
}
$h->stop;

# ---- the runtime role changes no schema -------------------------------------------
for my $ddl ('CREATE TABLE octo_webhooks.x (a int)',
             'ALTER TABLE octo_webhooks.webhooks ADD COLUMN x int',
             'DROP TABLE octo_webhooks.events',
             'TRUNCATE octo_webhooks.deliveries',
             'CREATE INDEX x ON octo_webhooks.deliveries (id)',
             q{CREATE FUNCTION octo_webhooks.x() RETURNS int LANGUAGE sql AS 'SELECT 1'},
             q{CREATE OR REPLACE FUNCTION octo_webhooks.iso(t timestamptz) RETURNS text LANGUAGE sql AS 'SELECT 1::text'},
             'DROP FUNCTION octo_webhooks.claim(int, interval, text, int, int, jsonb)',
             'DELETE FROM octo_webhooks.schema_migrations',
             'UPDATE octo_webhooks.tokens SET revoked_at = now()') {
    like(try_sql($rt_db, $ddl), $denied, "runtime cannot: $ddl");
}
done_testing();
