# A Peek-style client session (seed 004, issue 5): create with only url and
# event, no Octo-Capabilities; read id/event/url back; list; the delivery it
# receives; delete by id and read the deleted object back.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use lib 't/lib';
use OWHDelivery;

my $db = new_database();
my $h = start_httpd(conninfo => $db);
my $sink = start_sink();
my $tok = token('peek-reseller', ['octo:read.webhooks', 'octo:write.webhooks'], db => $db);
(my $cred = $sink->url('/webhooks/booking_update')) =~ s{http://}{http://user:pass\@};

my $r = api('POST', '/webhooks', base => $h->base, token => $tok, json => { url => $cred, event => 'booking_update' });
is($r->{code}, 200, 'create: 200 OK, as Peek answers');
my $w = $r->{json};
like($w->{id}, qr/\S/, 'id');
is($w->{event}, 'booking_update', 'event as sent');
is($w->{url}, 'http://user:****@127.0.0.1:' . $sink->{port} . '/webhooks/booking_update', 'url with its password masked');
is($r->{headers}->header('Content-Type'), 'application/json', 'JSON answer');

my $list = api('GET', '/webhooks', base => $h->base, token => $tok);
is($list->{code}, 200, 'list: 200');
is_deeply([ map { [ $_->{id}, $_->{event}, $_->{url} ] } @{ $list->{json} } ], [ [ $w->{id}, $w->{event}, $w->{url} ] ],
          'list: an array of {id, event, url, ...}');

emit($db, 'booking_update', { uuid => '89fe0192-ddcd-430a-b285-e1396a4725d2', status => 'ON_HOLD', testMode => JSON::PP::true },
     'peek-reseller');
my $d = $sink->wait_for(path => '/webhooks/booking_update')->[0];
ok($d, 'the booking update arrives');
is($d->{json}{webhook}{id}, $w->{id}, 'payload webhook.id');
is($d->{json}{webhook}{event}, 'booking_update', 'payload webhook.event');
is($d->{json}{webhook}{url}, $w->{url}, 'payload webhook.url (masked)');
is($d->{json}{booking}{uuid}, '89fe0192-ddcd-430a-b285-e1396a4725d2', 'payload booking');
like($d->{headers}{authorization} // '', qr/^Basic /, 'the URL credentials become Basic auth');

$r = api('DELETE', "/webhooks/$w->{id}", base => $h->base, token => $tok);
is($r->{code}, 200, 'delete by id: 200');
is_deeply([ @{ $r->{json} }{qw(id event url)} ], [ $w->{id}, 'booking_update', $w->{url} ], 'the deleted object read back');
is_deeply(api('GET', '/webhooks', base => $h->base, token => $tok)->{json}, [], 'list is empty after');
is(api('DELETE', "/webhooks/$w->{id}", base => $h->base, token => $tok)->{code}, 404, 'deleting again: 404');

done_testing();
