# POST /webhooks: defaults, every field, event aliases, capabilities from the
# Octo-Capabilities header and the octo/cart rule.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use lib 't/lib';
use OWHTest;
use JSON::PP ();

my $tok = token("create-$$", ['octo:read.webhooks', 'octo:write.webhooks']);
my $T = JSON::PP::true;
my $F = JSON::PP::false;

my $r = api('POST', '/webhooks', token => $tok, json => { event => 'booking_update', url => 'https://example.com/hook' });
is($r->{code}, 200, 'create: 200');
is_deeply([sort keys %{ $r->{json} }], [sort qw(id event url active retryOnError useContactLanguage headers capabilities
                                                signed disabledReason disabledAt)],
          'exactly the Webhook object fields (OCTO\'s, and the delivery state: signed, disabledReason, disabledAt)');
is($r->{json}{signed}, JSON::PP::false, 'not signed unless asked');
is($r->{json}{disabledReason}, undef, 'not disabled');
like($r->{json}{id}, qr/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'id is a UUID');
is($r->{json}{event}, 'booking_update', 'event');
is($r->{json}{url}, 'https://example.com/hook', 'url');
ok($r->{json}{active} && JSON::PP::is_bool($r->{json}{active}), 'active defaults to true');
ok($r->{json}{retryOnError} && JSON::PP::is_bool($r->{json}{retryOnError}), 'retryOnError defaults to true');
ok($r->{json}{useContactLanguage}, 'useContactLanguage defaults to true');
is_deeply($r->{json}{headers}, {}, 'headers default {}');
is_deeply($r->{json}{capabilities}, [], 'no Octo-Capabilities: no capabilities');
is($r->{headers}->header('Content-Type'), 'application/json', 'application/json');

$r = api('POST', '/webhooks', token => $tok, json => {
    event => 'availability.updated', url => 'http://example.org:8080/a?x=1', retryOnError => $F,
    useContactLanguage => $F, active => $F, headers => { 'X-Webhook-Secret' => 'whsec_123', 'X-Empty' => '' } });
is($r->{code}, 200, 'create with every field');
is($r->{json}{event}, 'availability.updated', 'dotted alias echoed as given');
ok(!$r->{json}{retryOnError} && !$r->{json}{useContactLanguage} && !$r->{json}{active}, 'booleans false');
is_deeply($r->{json}{headers}, { 'X-Webhook-Secret' => 'whsec_123', 'X-Empty' => '' }, 'headers stored');

for my $ev (qw(booking_update order_update availability_update product_update
               booking.updated order.updated availability.updated product.updated)) {
    $r = api('POST', '/webhooks', token => $tok, json => { event => $ev, url => 'https://e.com/' . $ev });
    is($r->{code} . ' ' . ($r->{json}{event} // ''), "200 $ev", "event $ev");
}

# capabilities
$r = api('POST', '/webhooks', token => $tok, caps => 'octo/webhooks, octo/pricing',
         json => { event => 'booking_update', url => 'https://e.com/c1' });
is_deeply($r->{json}{capabilities}, ['octo/pricing'], 'octo/webhooks dropped, items trimmed');
is($r->{headers}->header('Octo-Capabilities'), 'octo/webhooks, octo/pricing', 'request capabilities echoed');
$r = api('POST', '/webhooks', token => $tok, caps => 'pricing, offers,octo/pricing,, content ',
         json => { event => 'booking_update', url => 'https://e.com/c2' });
is_deeply($r->{json}{capabilities}, ['octo/pricing', 'octo/offers', 'octo/content'], 'short names, de-duplicated, order kept');
$r = api('POST', '/webhooks', token => $tok, caps => 'octo/pricing',
         json => { event => 'order_update', url => 'https://e.com/c3' });
is_deeply($r->{json}{capabilities}, ['octo/pricing', 'octo/cart'], 'order_update gets octo/cart');
$r = api('POST', '/webhooks', token => $tok, json => { event => 'order.updated', url => 'https://e.com/c4' });
is_deeply($r->{json}{capabilities}, ['octo/cart'], 'order.updated gets octo/cart without a header');
$r = api('POST', '/webhooks', token => $tok, caps => 'cart, pricing', json => { event => 'order_update', url => 'https://e.com/c5' });
is_deeply($r->{json}{capabilities}, ['octo/cart', 'octo/pricing'], 'octo/cart not doubled');
$r = api('POST', '/webhooks', token => $tok, caps => 'octo/pricing',
         json => { event => 'booking_update', url => 'https://e.com/c6', capabilities => ['octo/evil'] });
is_deeply($r->{json}{capabilities}, ['octo/pricing'], 'body capabilities ignored');
$r = api('POST', '/webhooks', token => $tok, json => { event => 'booking_update', url => 'https://e.com/c7', id => 'mine', extra => [1] });
is($r->{code}, 200, 'unknown fields ignored');
isnt($r->{json}{id}, 'mine', 'body id ignored');
$r = api('POST', '/webhooks', token => $tok, caps => 'octo/pri"cing', json => { event => 'booking_update', url => 'https://e.com/c8' });
is($r->{code} . ' ' . ($r->{json}{error} // ''), '400 BAD_REQUEST', 'malformed capability: 400');

# credentials in the URL
$r = api('POST', '/webhooks', token => $tok, json => { event => 'booking_update', url => 'https://alice:s3cretpw@e.com/basic' });
is($r->{json}{url}, 'https://alice:****@e.com/basic', 'password masked in the answer');
unlike($r->{body}, qr/s3cretpw/, 'password never in the body');
my $rows = psql_query('SELECT url FROM octo_webhooks.webhooks WHERE id = $1::uuid', $r->{json}{id});
is($rows->[0][0], 'https://alice:s3cretpw@e.com/basic', 'stored with the credentials for delivery');
$r = api('POST', '/webhooks', token => $tok, json => { event => 'booking_update', url => 'https://tokenonly@e.com/u' });
is($r->{json}{url}, 'https://****@e.com/u', 'user-only userinfo masked whole');

# Peek's client: only url and event, reads id/event/url back
$r = api('POST', '/webhooks', token => $tok, json => { url => 'https://example.com/webhooks/booking_update', event => 'booking_update' });
ok($r->{json}{id} && $r->{json}{event} eq 'booking_update' && $r->{json}{url} eq 'https://example.com/webhooks/booking_update', "Peek's create");

done_testing();
