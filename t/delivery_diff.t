# diff[] end to end (issue 5): a booking going ON_HOLD -> CONFIRMED ->
# CANCELLED yields the three expected diffs at the sink; an order losing a
# booking gets the booking object in "was"; products get diffs, availability
# none; cardPayment session details never leave; Content-Language falls back
# to the booking contact's first locale.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use lib 't/lib';
use OWHDelivery;
use JSON::PP ();

my $db = new_database();
my $h = start_httpd(conninfo => $db);
my $sink = start_sink();
my $tok = token('res-a', ['octo:read.webhooks', 'octo:write.webhooks'], db => $db);
my $create = sub { api('POST', '/webhooks', base => $h->base, token => $tok, @_)->{json} };
my $wb = $create->(json => { event => 'booking_update', url => $sink->url('/booking') });
my $wc = $create->(caps => 'octo/cardPayments', json => { event => 'booking_update', url => $sink->url('/card') });
my $wo = $create->(json => { event => 'order_update', url => $sink->url('/order') });
my $wp = $create->(json => { event => 'product_update', url => $sink->url('/product') });
my $wa = $create->(json => { event => 'availability_update', url => $sink->url('/availability') });
ok($wb->{id} && $wc->{id} && $wo->{id} && $wp->{id} && $wa->{id}, 'webhooks created');
is_deeply($wc->{capabilities}, ['octo/cardPayments'], 'the cardPayments webhook stores its capability');

my $null = JSON::PP::null;
my %booking = (uuid => 'b-1', status => 'ON_HOLD', utcExpiresAt => '2026-06-07T17:06:37Z', utcConfirmedAt => $null,
               cancellable => JSON::PP::true, cancellation => $null, notes => "caf\x{e9} / ~1",
               contact => { fullName => 'Ana', locales => ['pt-BR', 'en'] },
               unitItems => [ { uuid => 'u-1', unitId => 'adult' } ],
               cardPayment => { gateway => 'stripe', stripe => { paymentIntent => { clientSecret => 'pi_secret' } } });
emit($db, 'booking_update', \%booking, 'res-a');
emit($db, 'booking_update', { %booking, status => 'CONFIRMED', utcExpiresAt => $null,
                              utcConfirmedAt => '2026-06-07T17:00:00Z',
                              unitItems => [ { uuid => 'u-1', unitId => 'adult' }, { uuid => 'u-2', unitId => 'child' } ] }, 'res-a');
emit($db, 'booking_update', { %booking, status => 'CANCELLED', utcExpiresAt => $null,
                              utcConfirmedAt => '2026-06-07T17:00:00Z', cancellable => JSON::PP::false,
                              cancellation => { reason => 'CUSTOMER', refund => 'FULL' },
                              unitItems => [ { uuid => 'u-1', unitId => 'adult' }, { uuid => 'u-2', unitId => 'child' } ] }, 'res-a');

my $got = $sink->wait_for(path => '/booking', count => 3);
is(scalar @$got, 3, 'three booking deliveries');
my @d = map { [ sort { $a->{path} cmp $b->{path} } @{ $_->{json}{diff} } ] } @$got;
is_deeply([ map { $_->{json}{booking}{status} } @$got ], [qw(ON_HOLD CONFIRMED CANCELLED)], 'in order');
is_deeply($d[0], [], 'ON_HOLD (first event): diff []');
is_deeply($d[1], [
    { op => 'replace', path => '/status', was => 'ON_HOLD', value => 'CONFIRMED' },
    { op => 'add', path => '/unitItems/1', value => { uuid => 'u-2', unitId => 'child' } },
    { op => 'replace', path => '/utcConfirmedAt', was => $null, value => '2026-06-07T17:00:00Z' },
    { op => 'replace', path => '/utcExpiresAt', was => '2026-06-07T17:06:37Z', value => $null },
], 'CONFIRMED: status, confirmation, expiry, a unit added');
is_deeply($d[2], [
    { op => 'replace', path => '/cancellable', was => JSON::PP::true, value => JSON::PP::false },
    { op => 'replace', path => '/cancellation', was => $null, value => { reason => 'CUSTOMER', refund => 'FULL' } },
    { op => 'replace', path => '/status', was => 'CONFIRMED', value => 'CANCELLED' },
], 'CANCELLED: status, cancellable, cancellation');
ok(!exists $_->{json}{booking}{cardPayment}, 'no cardPayment in the booking') for @$got;
unlike($_->{body}, qr/pi_secret|"cardPayment"/, 'no card session anywhere in the body (diff included)') for @$got;
is($got->[0]{headers}{'content-language'}, 'pt-BR', "Content-Language: the contact's first locale");

my $card = $sink->wait_for(path => '/card', count => 3);
is(scalar @$card, 3, 'the octo/cardPayments webhook got the three');
unlike($_->{body}, qr/pi_secret|"cardPayment"/, 'octo/cardPayments active: cardPayment suppressed') for @$card;
is_deeply([ sort map { $_->{path} } @{ $card->[2]{json}{diff} } ], [qw(/cancellable /cancellation /status)],
          'the same diff for every webhook of the event');

# An order losing a booking: "was" carries the whole booking; keys needing escaping.
my %b1 = (uuid => 'ob-1', status => 'ON_HOLD');
my %b2 = (uuid => 'ob-2', status => 'ON_HOLD', contact => { locales => [] });
emit($db, 'order_update', { id => 'o-1', status => 'ON_HOLD', bookings => [ \%b1, \%b2 ], 'a/b~c' => 1 }, 'res-a');
emit($db, 'order_update', { id => 'o-1', status => 'ON_HOLD', bookings => [ \%b1 ], 'a/b~c' => 2 }, 'res-a');
my $o = $sink->wait_for(path => '/order', count => 2);
is_deeply($o->[0]{json}{diff}, [], 'first order event: []');
is_deeply([ sort { $a->{path} cmp $b->{path} } @{ $o->[1]{json}{diff} } ], [
    { op => 'replace', path => '/a~1b~0c', was => 1, value => 2 },
    { op => 'remove', path => '/bookings/1', was => \%b2 },
], 'a removed booking is an object in was; "/" and "~" escaped');

emit($db, 'product_update', { id => 'p-1', tags => ['a'] });
emit($db, 'product_update', { id => 'p-1', tags => [] });
my $p = $sink->wait_for(path => '/product', count => 2);
is_deeply($p->[1]{json}{diff}, [ { op => 'remove', path => '/tags/0', was => 'a' } ], 'product diff');

emit($db, 'availability_update', { id => 'a-1', productId => 'p-1', optionId => 'o', status => 'AVAILABLE' });
emit($db, 'availability_update', { id => 'a-1', productId => 'p-1', optionId => 'o', status => 'SOLD_OUT' });
my $a = $sink->wait_for(path => '/availability', count => 2);
ok(!exists $_->{json}{diff}, 'availability has no diff') for @$a;
is(q_at($db, "SELECT count(*) FROM octo_webhooks.object_states WHERE event_type = 'availability_update'")->[0][0], 0,
   'no state is kept for availability');

# The diff is per object: another booking starts from [].
emit($db, 'booking_update', { uuid => 'b-2', status => 'CONFIRMED' }, 'res-a');
my $b2 = $sink->wait_for(path => '/booking', count => 4)->[3];
is_deeply([ $b2->{json}{booking}{uuid}, $b2->{json}{diff} ], ['b-2', []], 'another object: diff []');

# A rolled-back event leaves the state as it was last sent.
q_at($db, q{DO $$ BEGIN PERFORM octo_webhooks.emit('product_update', '{"id":"p-1","tags":["x","y"]}'); RAISE EXCEPTION 'rollback'; EXCEPTION WHEN raise_exception THEN NULL; END $$});
emit($db, 'product_update', { id => 'p-1', tags => ['z'] });
$p = $sink->wait_for(path => '/product', count => 3);
is_deeply($p->[2]{json}{diff}, [ { op => 'add', path => '/tags/0', value => 'z' } ],
          'a rolled-back event does not move the state');

# Past the dispatcher's view cache (16 MB of JSON; an event counts its object
# and its previous state): 100 events of ~100 KB objects, each diff still
# from its own previous state.
my $wbig = $create->(json => { event => 'product_update', url => $sink->url('/big') });
q_at($db, q{SELECT count(octo_webhooks.emit('product_update',
                 jsonb_build_object('id', 'p-big', 'n', g, 'pad', repeat('x', 100000))))
             FROM generate_series(1, 100) g});
wait_until(sub { q_at($db, q{SELECT count(*) FROM octo_webhooks.deliveries WHERE webhook_id = $1 AND status = 'succeeded'},
                      $wbig->{id})->[0][0] == 100 }, 60);
my $big = $sink->requests('/big');
is(scalar @$big, 100, 'a hundred large events delivered');
is_deeply([ map { $_->{json}{product}{n} } @$big ], [ 1 .. 100 ], 'in order');
is(scalar(grep { my $i = $_; my $d = $big->[$i]{json}{diff};
                 @$d == 1 && $d->[0]{path} eq '/n' && $d->[0]{was} == $i && $d->[0]{value} == $i + 1 } 1 .. 99), 99,
   'each diff is from the event before it');

done_testing();
