# Issue 10: GET list answers from each child's cache (src/owh_listcache.h)
# without a database round trip, and is never staler than it may be:
#   - a write through this host's API ends every cached list before it
#     answers: a client reads its own writes, on any child;
#   - a change made anywhere else (another host's API, plain SQL) reaches a
#     host whose dispatcher listens within moments, whatever the TTL;
#   - without a dispatcher, within OctoWebhooksListCacheTTL;
#   - one connection's cached list never answers another's.
# Hosts here are httpd instances on one database (each its own shared memory).
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use Time::HiRes qw(time sleep);
use lib 't/lib';
use OWHDelivery;

my $db = new_database();
my $one_child = join("\n", 'StartServers 1', 'ServerLimit 1', 'MaxRequestWorkers 10', 'MinSpareThreads 1',
                     'MaxSpareThreads 10');
# A: no dispatcher, one child, a TTL far past the test: only its own writes end its lists
my $A = start_httpd(conninfo => $db, directives => "OctoWebhooksDispatcher Off\nOctoWebhooksListCacheTTL 10m\n$one_child");
# B: a dispatcher listening for changes, the same long TTL, one child
my $B = start_httpd(conninfo => $db, directives => "OctoWebhooksListCacheTTL 10m\n$one_child");
# C: no dispatcher, a TTL of 1 s
my $C = start_httpd(conninfo => $db, directives => "OctoWebhooksDispatcher Off\nOctoWebhooksListCacheTTL 1s\n$one_child");
# E: no dispatcher, the defaults: nobody would hear of changes made elsewhere, so no cache
my $E = start_httpd(conninfo => $db, directives => "OctoWebhooksDispatcher Off\n$one_child");
# D: no dispatcher, a long TTL, two children of several threads
my $D = start_httpd(conninfo => $db, directives => "OctoWebhooksDispatcher Off\nOctoWebhooksListCacheTTL 10m\nStartServers 2");

my $tok = token('lc-1', ['octo:read.webhooks', 'octo:write.webhooks'], db => $db);
my $other = token('lc-2', ['octo:read.webhooks', 'octo:write.webhooks'], db => $db);
sub create { my ($h, $t, $url) = @_;
             api('POST', '/webhooks', base => $h->base, token => $t, json => { event => 'booking_update', url => $url }) }
sub urls { my ($h, $t) = @_; my $r = api('GET', '/webhooks', base => $h->base, token => $t);
           return $r->{code} == 200 ? join(' ', map { $_->{url} } @{ $r->{json} }) : "HTTP $r->{code}" }
sub set_url_by_sql { my ($from, $to) = @_;
                     q_at($db, q{UPDATE octo_webhooks.webhooks SET url = $2, url_display = $2 WHERE url = $1}, $from, $to) }

my $w1 = create($A, $tok, 'https://hooks.example.com/one');
is($w1->{code}, 200, 'a webhook');
create($A, $other, 'https://hooks.example.com/other');

# the same answer from the database and from the cache
my $first = api('GET', '/webhooks', base => $A->base, token => $tok);
my $again = api('GET', '/webhooks', base => $A->base, token => $tok);
is($again->{body}, $first->{body}, 'a cached list is the same bytes as the one read from the database');
for my $h ('Content-Type', 'Content-Length', 'Cache-Control') {
    is($again->{headers}->header($h), $first->{headers}->header($h), "and the same $h");
}

# A serves from its cache: a change by plain SQL is not seen there (no dispatcher, TTL 10 min)
urls($_, $tok) for $B, $C;          # every host has the list cached now
set_url_by_sql('https://hooks.example.com/one', 'https://hooks.example.com/one-sql');
my $hits = sub { prom_value(prom_parse($A->metrics), 'octo_webhooks_api_list_cache_'. $_[0] . '_total') };
my ($h0, $m0) = ($hits->('hits'), $hits->('misses'));
is(urls($A, $tok), 'https://hooks.example.com/one', 'A answers from its cache (no round trip): the SQL change is not seen yet');
is($hits->('hits') - $h0, 1, 'octo_webhooks_api_list_cache_hits_total counts it');
is($hits->('misses') - $m0, 0, 'and no miss');
is($A->status->{listCache}{hits}, $h0 + 1, '/octo-status tells the same hits');

# B's dispatcher hears of the change: B's cache ends within moments, TTL 10 min or not
my $t0 = time;
ok(wait_until(sub { urls($B, $tok) eq 'https://hooks.example.com/one-sql' }, 5),
   'B (its dispatcher listening) shows the SQL change') or diag(urls($B, $tok));
cmp_ok(time - $t0, '<', 3, sprintf('within %.2f s, far inside its TTL', time - $t0));

# C has no dispatcher and a TTL of 1 s: it shows the change within ~1 s
ok(wait_until(sub { urls($C, $tok) eq 'https://hooks.example.com/one-sql' }, 4),
   'C (no dispatcher, TTL 1 s) shows the change once its entry expires');

# E, without a dispatcher at the defaults, reads each list: a change by SQL shows at once
my $ehits = sub { prom_value(prom_parse($E->metrics), 'octo_webhooks_api_list_cache_'. $_[0] . '_total') };
urls($E, $tok) for 1 .. 3;
set_url_by_sql('https://hooks.example.com/one-sql', 'https://hooks.example.com/one-e');
is(urls($E, $tok), 'https://hooks.example.com/one-e', 'E (no dispatcher, defaults) shows a SQL change at once');
is($ehits->('hits') + $ehits->('misses'), 0, 'E kept no list (OctoWebhooksListCacheTTL is 0 without a dispatcher)');
set_url_by_sql('https://hooks.example.com/one-e', 'https://hooks.example.com/one-sql');
ok(wait_until(sub { urls($B, $tok) eq 'https://hooks.example.com/one-sql' }, 5), 'B follows (back as it was)');

# a write through A's own API ends A's cached lists before it answers
my $w2 = create($A, $tok, 'https://hooks.example.com/two');
$m0 = $hits->('misses');
is(urls($A, $tok), 'https://hooks.example.com/one-sql https://hooks.example.com/two',
   "A's own write ends its cached lists: the new webhook and the SQL change both show");
is($hits->('misses') - $m0, 1, 'a miss is counted');

# a write through A reaches B by its dispatcher
ok(wait_until(sub { urls($B, $tok) =~ m{/two$} }, 5), "B shows A's create within moments");

# read your own writes on a host of two children (D), every list cached first
my @bad;
my $wid = $w2->{json}{id};
for my $i (1 .. 15) {
    urls($D, $tok) for 1 .. 4;                     # cached in both children
    my $c = create($D, $tok, "https://hooks.example.com/d$i");
    push @bad, "create $i" unless urls($D, $tok) =~ m{/d$i\b};
    urls($D, $tok) for 1 .. 4;
    api('PATCH', "/webhooks/$wid", base => $D->base, token => $tok, json => { url => "https://hooks.example.com/p$i" });
    push @bad, "patch $i" unless urls($D, $tok) =~ m{/p$i\b};
    urls($D, $tok) for 1 .. 4;
    api('DELETE', "/webhooks/$c->{json}{id}", base => $D->base, token => $tok);
    push @bad, "delete $i" if urls($D, $tok) =~ m{/d$i\b};
}
is("@bad", '', "D: 15 creates, patches and deletes, each seen by the very next list (on either child)");

# tenancy: two connections' lists, both cached, never cross
my %want = (lc1 => urls($A, $tok), lc2 => urls($A, $other));
my @crossed;
for (1 .. 20) {
    push @crossed, 'lc-1' if urls($A, $tok) ne $want{lc1};
    push @crossed, 'lc-2' if urls($A, $other) ne $want{lc2};
}
is("@crossed", '', "one connection's cached list never answers another's");
like($want{lc2}, qr{^https://hooks\.example\.com/other$}, "the other connection sees only its own");

# the subscriptions of the notifications dialect are a list of their own
my $ntok = token('lc-1', ['octo:read.notifications', 'octo:write.notifications'], db => $db);
my $sub = api('POST', '/v1/notifications/subscriptions', base => $A->base, token => $ntok,
              json => { url => 'https://hooks.example.com/sub', notificationTypes => ['booking_update'] });
is($sub->{code}, 201, 'a subscription of the same connection') or diag($sub->{body});
my $subs = api('GET', '/v1/notifications/subscriptions', base => $A->base, token => $ntok);
is(join(' ', map { $_->{url} } @{ $subs->{json} // [] }), 'https://hooks.example.com/sub',
   "its list is its own, not the connection's cached webhooks list");
is(urls($A, $tok), 'https://hooks.example.com/one-sql https://hooks.example.com/p15',
   "A's webhooks list after that write on A: D's changes (which A had not heard of) show now");

# what notifies: a change a list shows, not the delivery bookkeeping (psql
# prints the notices its own session receives)
sub notices { my ($sql) = @_;
              scalar grep { $_->[0] =~ /Asynchronous notification "octo_webhooks_lists"/ }
                     @{ q_at($db, "LISTEN octo_webhooks_lists; $sql; SELECT 'end'") } }
is(notices(q{UPDATE octo_webhooks.webhooks SET failing_since = now() WHERE connection_id = 'lc-1'}), 0,
   'failing_since (delivery bookkeeping) set on every webhook of a connection: no notice');
is(notices(q{UPDATE octo_webhooks.webhooks SET active = false WHERE connection_id = 'lc-1'}), 1,
   'active set on them: one notice for the transaction');
is(notices(q{UPDATE octo_webhooks.webhooks SET headers = '{"X-A": "b"}' WHERE connection_id = 'lc-2'}), 1,
   'headers: a notice');
is(notices(q{DELETE FROM octo_webhooks.webhooks WHERE connection_id = 'lc-2'}), 1, 'a delete: a notice');
done_testing();
