# Issue 12 #4: bounds per tenant. OctoWebhooksMaxWebhooks (3 here) counts both
# dialects of one connection; the create beyond it is 409 naming the limit
# and stores nothing; other connections are not affected. The trigger route
# queues at most OctoWebhooksTriggerRate (4 here) test notifications per
# webhook per minute, counted in PostgreSQL so the bound holds across httpd
# children and hosts (two httpds on one database here); beyond it 429 with
# Retry-After, nothing queued.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use lib 't/lib';
use OWHDelivery;

my $db = new_database();
my @dirs = ('OctoWebhooksDispatcher Off', 'OctoWebhooksMaxWebhooks 3', 'OctoWebhooksTriggerRate 4');
my $h1 = start_httpd(conninfo => $db, directives => join("\n", @dirs));
my $h2 = start_httpd(conninfo => $db, directives => join("\n", @dirs));
my $tok = token('lim-a', ['octo:read.webhooks', 'octo:write.webhooks',
                 'octo:read.notifications', 'octo:write.notifications'], db => $db);
my $other = token('lim-b', ['octo:read.webhooks', 'octo:write.webhooks'], db => $db);
my $count = sub { q_at($db, q{SELECT count(*) FROM octo_webhooks.webhooks WHERE connection_id = $1}, $_[0])->[0][0] };

my @ids;
for my $n (1 .. 2) {
    my $r = api('POST', '/webhooks', base => $n == 1 ? $h1->base : $h2->base, token => $tok,
                   json => { event => 'booking_update', url => "https://example.com/h$n" });
    is($r->{code}, 200, "webhook $n created");
    push @ids, $r->{json}{id};
}
my $s = api('POST', '/v1/notifications/subscriptions', base => $h1->base, token => $tok,
               json => { url => 'https://example.com/s', notificationTypes => ['BOOKING_UPDATE'] });
is($s->{code}, 201, 'a subscription is the third');
my $r = api('POST', '/webhooks', base => $h2->base, token => $tok,
               json => { event => 'booking_update', url => 'https://example.com/h4' });
is($r->{code}, 409, 'the fourth webhook: 409');
is($r->{json}{error}, 'BAD_REQUEST', 'an OCTO error');
like($r->{json}{errorMessage} // '', qr/OctoWebhooksMaxWebhooks/, 'naming the limit');
like($r->{json}{errorMessage} // '', qr/\b3\b/, 'and its value');
$r = api('POST', '/v1/notifications/subscriptions', base => $h1->base, token => $tok,
            json => { url => 'https://example.com/s2', notificationTypes => ['PRODUCT_UPDATE'] });
is($r->{code}, 409, 'a fourth subscription: 409 too (both dialects count)');
is($count->('lim-a'), 3, 'nothing more stored');
is(api('POST', '/webhooks', base => $h1->base, token => $other, json => { event => 'booking_update', url => 'https://example.com/b' })->{code},
   200, 'another connection is not affected');
is(api('DELETE', "/webhooks/$ids[1]", base => $h1->base, token => $tok)->{code}, 200, 'after a delete');
is(api('POST', '/webhooks', base => $h1->base, token => $tok, json => { event => 'booking_update', url => 'https://example.com/h5' })->{code},
   200, 'there is room again');

# concurrent creates cannot overshoot: 8 at once from both servers, room for 2
my @pids;
for my $n (1 .. 8) {
    my $pid = fork // die;
    if (!$pid) {
        my $x = api('POST', '/webhooks', base => $n % 2 ? $h1->base : $h2->base, token => $other,
                       json => { event => 'booking_update', url => "https://example.com/c$n" });
        POSIX::_exit($x->{code} == 200 ? 0 : 1);
    }
    push @pids, $pid;
}
waitpid($_, 0) for @pids;
is($count->('lim-b'), 3, 'eight concurrent creates of a connection with one: exactly two more stored');

# triggers: 4 per webhook per minute across both httpds
my @codes;
for my $n (1 .. 4) {
    push @codes, api('POST', "/webhooks/$ids[0]/trigger", base => $n % 2 ? $h1->base : $h2->base, token => $tok, json => {})->{code};
}
is_deeply(\@codes, [200, 200, 200, 200], 'four triggers within the minute (alternating hosts)');
$r = api('POST', "/webhooks/$ids[0]/trigger", base => $h2->base, token => $tok, json => {});
is($r->{code}, 429, 'the fifth: 429');
my $ra = $r->{headers}->header('Retry-After') // '';
like($ra, qr/^\d+$/, 'with Retry-After');
ok($ra >= 1 && $ra <= 60, "Retry-After within the minute ($ra)");
like($r->{json}{errorMessage} // '', qr/OctoWebhooksTriggerRate/, 'naming the limit');
my $queued = q_at($db, q{SELECT count(*) FROM octo_webhooks.deliveries WHERE webhook_id = $1}, $ids[0])->[0][0];
is($queued, 4, 'nothing queued by the refused trigger');
is(api('POST', "/webhooks/$ids[0]/trigger", base => $h1->base, token => $other, json => {})->{code}, 404,
   "another connection's trigger of it: still 404");

# the window slides: age the uses, and triggers are admitted again
q_at($db, q{UPDATE octo_webhooks.deliveries SET created_at = created_at - interval '61 seconds' WHERE webhook_id = $1}, $ids[0]);
is(api('POST', "/webhooks/$ids[0]/trigger", base => $h1->base, token => $tok, json => {})->{code}, 200,
   'a minute later: admitted again');
done_testing();
