# The operator CLI, octo-webhooks (and its old name octo-webhooks-token),
# against a database of its own: help, migrations on an empty database,
# tokens (printed once, revoked from stdin), status with a live dispatcher,
# one object's deliveries across connections, replay in order, prune.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use lib 't/lib';
use OWHDelivery;
use File::Temp ();
use POSIX qw(strftime);
use Time::HiRes qw(sleep);

plan tests => 55;

my $CLI = "$ENV{OWH_SRCDIR}/octo-webhooks";
my $OLD = "$ENV{OWH_SRCDIR}/bin/octo-webhooks-token";

sub slurp { open(my $fh, '<', $_[0]) or return ''; local $/; my $s = <$fh>; return $s // '' }

# cli(conninfo, stdin, argv...) -> { rc, out, err }
sub cli {
    my ($db, $stdin, @argv) = @_;
    my $in = File::Temp->new; print $in $stdin // ''; close $in;
    my ($o, $e) = (File::Temp->new, File::Temp->new);
    my $pid = fork // die;
    if (!$pid) {
        $ENV{OCTO_WEBHOOKS_DB} = $db // '';
        open(STDIN, '<', "$in"); open(STDOUT, '>', "$o"); open(STDERR, '>', "$e");
        exec @argv or exit 127;
    }
    waitpid($pid, 0);
    return { rc => $? >> 8, out => slurp("$o"), err => slurp("$e") };
}
sub ow { my ($db, @a) = @_; cli($db, undef, $CLI, @a) }

# ---- help and refusals (no database needed) ---------------------------------
my @commands = ('token create', 'token revoke', 'token list', 'migrate', 'status', 'deliveries', 'replay', 'prune');
my $r = ow(undef);
is($r->{rc}, 2, 'no command: usage, exit 2');
$r = ow(undef, '--help');
ok($r->{rc} == 0 && !grep({ index($r->{out}, "octo-webhooks $_") < 0 } @commands), '--help lists every command');
my @nohelp = grep { my $h = ow(undef, split(/ /), '--help'); $h->{rc} != 0 || $h->{out} !~ /^usage: octo-webhooks \Q$_\E/ } @commands;
is_deeply(\@nohelp, [], '--help for each command');
is(ow(undef, 'status', '--bogus')->{rc}, 2, 'an unknown option: exit 2');
is(ow(undef, 'token', 'revoke', '--token', 'owh_x')->{rc}, 2, 'no token on the command line (ps shows it)');
is(cli(undef, undef, $OLD, 'list', '--db', 'dbname=x')->{rc}, 2, 'octo-webhooks-token: --db refused');
like(cli(undef, undef, $OLD, 'revoke', '--token', 'owh_x')->{err}, qr/stdin/, 'octo-webhooks-token: --token refused, stdin named');

# ---- migrations on an empty database ----------------------------------------
my $db = new_database();
my @sql = glob("$ENV{OWH_SRCDIR}/sql/*.sql");
my $n = scalar @sql;
$r = ow($db, 'status');
ok($r->{rc} == 1 && $r->{err} =~ /does not exist.*migrate/s, 'before migrate: status names the command to run');
$r = ow($db, 'migrate', '--status');
ok($r->{out} =~ /not created/ && (() = $r->{out} =~ /^  migration \d+_\w+\s+pending/mg) == $n, "migrate --status: $n migrations pending");
$r = ow($db, 'migrate', '--dry-run');
like($r->{out}, qr/dry run: nothing changed/, 'migrate --dry-run says so');
is(q_at($db, q{SELECT to_regclass('octo_webhooks.schema_migrations') IS NULL})->[0][0], 't', '... and changes nothing');
$r = ow($db, 'migrate');
ok($r->{rc} == 0 && $r->{out} =~ /at migration $n, up to date/, 'migrate applies the compiled-in migrations');
is(q_at($db, 'SELECT count(*) FROM octo_webhooks.schema_migrations')->[0][0], $n, "$n migrations recorded");
$r = ow($db, 'migrate', '--status');
ok($r->{out} =~ /migration $n; mod_octo_webhooks \S+ ships $n/ && (() = $r->{out} =~ /applied \d{4}-\d\d-\d\d .*ok$/mg) == $n,
   'migrate --status: all applied, with dates, checksums matching');
is(ow($db, 'migrate')->{rc}, 0, 'migrate again: nothing to do');

# ---- tokens ------------------------------------------------------------------
$r = ow($db, qw(token create --connection cli-a --abilities), 'octo:read.webhooks,octo:write.webhooks', qw(--label ops));
like($r->{out}, qr/\Aowh_[0-9a-f]{64}\n\z/, 'token create prints the token alone, once');
(my $tok = $r->{out}) =~ s/\n//;
is(q_at($db, q{SELECT count(*) FROM octo_webhooks.tokens WHERE token_hash = sha256(convert_to($1, 'UTF8'))}, $tok)->[0][0],
   1, 'stored as its SHA-256');
my $h = start_httpd(conninfo => $db, directives => "OctoWebhooksRetrySchedule 1h\nOctoWebhooksDisableAfter 30d");
my $sink = start_sink();
is(api('GET', '/webhooks', base => $h->base, token => $tok)->{code}, 200, 'the API takes it');
$r = ow($db, qw(token list --connection cli-a));
ok($r->{out} =~ /cli-a\s+ops\s+octo:read\.webhooks,octo:write\.webhooks\s.*active/ && index($r->{out}, $tok) < 0,
   'token list: label, abilities, state, never the token');
$r = cli($db, "$tok\n", $CLI, qw(token revoke));
like($r->{out}, qr/^revoked token \d+/, 'token revoke reads the token from stdin');
ok(wait_until(sub { api('GET', '/webhooks', base => $h->base, token => $tok)->{code} == 403 }, 5),
   'the API refuses it (within the token cache\'s second)');
$r = cli($db, "$tok\n", $CLI, qw(token revoke));
ok($r->{rc} == 1 && $r->{err} =~ /no such active token/, 'revoking it again: exit 1');
my $tok2 = cli($db, undef, $OLD, qw(create --connection cli-a --abilities octo:read.webhooks))->{out};
chomp $tok2;
like($tok2, qr/^owh_/, 'octo-webhooks-token create still works');
my $id2 = q_at($db, q{SELECT id FROM octo_webhooks.tokens WHERE token_hash = sha256(convert_to($1, 'UTF8'))}, $tok2)->[0][0];
is(ow($db, qw(token revoke --id), $id2)->{rc}, 0, 'token revoke --id');
ok(wait_until(sub { api('GET', '/webhooks', base => $h->base, token => $tok2)->{code} == 403 }, 5), '... revoked');
$r = ow($db, qw(token create --connection cli-a --abilities octo:fly));
ok($r->{rc} == 1 && $r->{err} =~ /abilities must be/, 'unknown abilities: the database says which');

# ---- status --------------------------------------------------------------------
my $ta = token('cli-a', ['octo:read.webhooks', 'octo:write.webhooks'], db => $db);
my $tb = token('cli-b', ['octo:read.webhooks', 'octo:write.webhooks'], db => $db);
$r = wait_until(sub { my $s = ow($db, 'status'); $s->{out} =~ /dispatchers: 1\n/ ? $s : undef }, 15);
ok($r && $r->{out} =~ /^\s+\S+:\d+\s+connected since /m, 'status: the dispatcher (host:pid), connected');
$sink->behave('/fail', codes => [500]);
$sink->behave('/gone', codes => [410]);
my $wfail = api('POST', '/webhooks', base => $h->base, token => $ta, json => { event => 'booking_update', url => $sink->url('/fail') })->{json}{id};
my $wgone = api('POST', '/webhooks', base => $h->base, token => $tb, json => { event => 'product_update', url => $sink->url('/gone') })->{json}{id};
emit($db, 'booking_update', { uuid => 'bk-1', status => 'CONFIRMED', seq => $_ }, 'cli-a') for 1 .. 3;
emit($db, 'product_update', { id => 'gone-1' });
wait_until(sub { q_at($db, q{SELECT count(*) FROM octo_webhooks.attempts})->[0][0] >= 2 }, 15);
wait_until(sub { q_at($db, q{SELECT disabled_reason IS NOT NULL FROM octo_webhooks.webhooks WHERE id = $1}, $wgone)->[0][0] eq 't' }, 10);
$r = ow($db, 'status');
my %q = $r->{out} =~ /^  (\w+)\s+(\S+)$/mg;
is_deeply([ @q{qw(pending retry_later parked unrouted oldest_unrouted_age)} ], [ 3, 1, 2, 0, '-' ],
          'status: 3 pending, 1 waiting to retry, 2 parked behind it, no event left to route')
    or diag($r->{out});
ok($r->{out} =~ /disabled webhooks: 1\n.*\Q$wgone\E\s+cli-b\s+octo\s+\S+\s.*410 Gone/s, 'status: the disabled webhook, its connection and reason');

# ---- deliveries of one object across connections ----------------------------------
my $wa = api('POST', '/webhooks', base => $h->base, token => $ta, json => { event => 'product_update', url => $sink->url('/a') })->{json}{id};
my $wb = api('POST', '/webhooks', base => $h->base, token => $tb, json => { event => 'product_update', url => $sink->url('/b') })->{json}{id};
$sink->behave('/b', codes => [500, 200]);
emit($db, 'product_update', { id => 'p-1', seq => $_ }) for 1 .. 2;
wait_until(sub { scalar(@{ $sink->requests('/a') }) >= 2 && scalar(@{ $sink->requests('/b') }) >= 1 }, 15);
$r = ow($db, qw(deliveries --object product:p-1));
my @blocks = split /\n\n/, $r->{out};
is(scalar(@blocks), 4, 'deliveries: every delivery of product p-1 (2 events x 2 connections)');
ok((grep { /connection\s+cli-a/ && /url\s+\Q${\ $sink->url('\/a') }\E/ } @blocks) == 2
   && (grep { /connection\s+cli-b/ } @blocks) == 2, '... to both connections, with the URL');
ok((grep { /attempt 1  \S+ \S+  status 500/ } @blocks) >= 1, '... with each attempt and its status');
my @events = map { /event\s+(\d+)/ ? $1 : 0 } @blocks;
is_deeply(\@events, [ sort { $b <=> $a } @events ], 'newest event first');
$r = ow($db, qw(deliveries --object product:p-1 --connection cli-b));
is(scalar(split /\n\n/, $r->{out}), 2, '--connection narrows it');
like(ow($db, qw(deliveries --object product:nope))->{out}, qr/no deliveries of product:nope/, 'an unknown object: none');
is(ow($db, qw(deliveries --object ticket:1))->{rc}, 2, 'an unknown object type: exit 2');
my $avail = ow($db, qw(deliveries --object), 'availability:prod/opt/2026-12-01T10:00:00Z');
is($avail->{rc}, 0, 'availability:<product>/<option>/<id>');

# ---- replay: again, in order per object, same webhook-id ---------------------------
wait_until(sub { q_at($db, q{SELECT count(*) FROM octo_webhooks.deliveries WHERE webhook_id = $1 AND status = 'succeeded'}, $wa)->[0][0] == 2 }, 10);
my $since = strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(time - 120));
$r = ow($db, qw(replay --object product:p-1 --webhook), $wa, '--dry-run');
like($r->{out}, qr/^2 ended deliveries matched, 2 to active webhooks, 0 requeued \(dry run/, 'replay --dry-run counts, changes nothing');
my $before = scalar @{ $sink->requests('/a') };
my @ids_before = map { $_->{headers}{'webhook-id'} } @{ $sink->requests('/a') };
$r = ow($db, qw(replay --webhook), $wa, '--since', $since);
like($r->{out}, qr/2 requeued/, 'replay --webhook --since requeues the ended deliveries');
my $again = wait_until(sub { my $x = $sink->requests('/a'); @$x >= $before + 2 ? $x : undef }, 15);
my @replayed = @{ $again || [] }[ $before .. $before + 1 ];
is_deeply([ map { $_->{json}{product}{seq} } @replayed ], [ 1, 2 ], 'replayed in event order');
is_deeply([ sort map { $_->{headers}{'webhook-id'} } @replayed ], [ sort @ids_before ], 'with the same webhook-id');
is(ow($db, qw(replay --webhook), $wa)->{rc}, 2, 'replay --webhook needs --since');
$r = ow($db, qw(replay --object product:gone-1));
like($r->{out}, qr/^1 ended deliveries matched, 0 to active webhooks, 0 requeued/, 'a disabled webhook is not replayed to');
# ordering with a pending head: a replay waits behind the object's pending delivery
$r = ow($db, qw(replay --object booking:bk-1));
like($r->{out}, qr/0 ended deliveries matched/, 'pending deliveries are not "ended": nothing to replay');

# ---- prune ---------------------------------------------------------------------------
# Everything but the booking's deliveries ends (/b's retry made due now),
# then all of it is aged by 40 days.
my $head = q_at($db, q{SELECT id FROM octo_webhooks.deliveries WHERE webhook_id = $1 AND status = 'pending'
                        AND next_attempt_at <> 'infinity'}, $wb)->[0][0];
is(api('POST', "/webhooks/$wb/deliveries/$head/retry", base => $h->base, token => $tb)->{code}, 200, "/b's delivery due now");
ok(wait_until(sub { q_at($db, q{SELECT count(*) FROM octo_webhooks.deliveries WHERE status = 'pending' AND webhook_id <> $1}, $wfail)->[0][0] == 0 }, 15),
   'only the booking deliveries are pending');
q_at($db, q{UPDATE octo_webhooks.events SET created_at = created_at - interval '40 days'});
q_at($db, q{UPDATE octo_webhooks.deliveries SET created_at = created_at - interval '40 days',
                   completed_at = completed_at - interval '40 days'});
my $ev_all = q_at($db, 'SELECT count(*) FROM octo_webhooks.events')->[0][0];
my $ev_pending = q_at($db, q{SELECT count(DISTINCT event_id) FROM octo_webhooks.deliveries WHERE status = 'pending'})->[0][0];
my $att_all = q_at($db, 'SELECT count(*) FROM octo_webhooks.attempts')->[0][0];
$r = ow($db, qw(prune --dry-run));
my ($pe, $pd, $pa) = $r->{out} =~ /would delete (\d+) events, (\d+) deliveries, (\d+) attempts/;
is($pe, $ev_all - $ev_pending, 'prune --dry-run: every event without pending work, nothing else');
is(q_at($db, 'SELECT count(*) FROM octo_webhooks.events')->[0][0], $ev_all, '... and deletes nothing');
is(ow($db, qw(prune --older-than 41d))->{out}, "deleted 0 events, 0 deliveries, 0 attempts ended more than 41d ago\n",
   '--older-than: nothing is that old');
$r = ow($db, qw(prune));
like($r->{out}, qr/^deleted $pe events, $pd deliveries, $pa attempts ended more than 30d ago/, 'prune deletes what the dry run counted');
is(q_at($db, 'SELECT count(*) FROM octo_webhooks.events')->[0][0], $ev_pending, 'the events with pending deliveries stay');
is(q_at($db, q{SELECT count(*) FROM octo_webhooks.deliveries WHERE status = 'pending'})->[0][0], 3, 'pending deliveries are never pruned');
is(q_at($db, 'SELECT count(*) FROM octo_webhooks.attempts')->[0][0], $att_all - $pa, 'their attempts stay, the others went');
is(ow($db, qw(prune --older-than 1x))->{rc}, 2, 'a malformed duration: exit 2');
is(ow($db, qw(prune --older-than))->{rc}, 2, 'a missing value: exit 2');

$h->stop;
