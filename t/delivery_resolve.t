# Resolve mode (issue 5): events carry only identifiers; at delivery the
# dispatcher fetches the object from the supplier's OCTO API (a fake one in
# the sink) with each webhook's stored capabilities and, when
# useContactLanguage, Accept-Language — so two webhooks with different
# capabilities get different payloads from one event, one fetch per distinct
# view. Also: diffs per view, cardPayment stripped, availability via POST
# /availability, a failing fetch retried like a failing endpoint.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use lib 't/lib';
use OWHDelivery;
use JSON::PP ();

my $sink = start_sink();
my $db = new_database();
my $h = start_httpd(conninfo => $db, directives => join("\n",
    'OctoWebhooksResolve booking_update product_update availability_update',
    'OctoWebhooksSupplierApi "' . $sink->url('/octo-api/') . '"',
    'OctoWebhooksSupplierApiToken "supplier-api-token"',
    'OctoWebhooksRetrySchedule "1s 1s 1s"'));
my $tok = token('res-a', ['octo:read.webhooks', 'octo:write.webhooks'], db => $db);
my $create = sub { my ($caps, %b) = @_; api('POST', '/webhooks', base => $h->base, token => $tok, caps => $caps, json => \%b)->{json} };
my $false = JSON::PP::false;

my $wp  = $create->('octo/pricing', event => 'booking_update', url => $sink->url('/pricing'));
my $wp2 = $create->('pricing', event => 'booking_update', url => $sink->url('/pricing2'));
my $wc  = $create->('octo/content', event => 'booking_update', url => $sink->url('/content'));
my $wn  = $create->('octo/content', event => 'booking_update', url => $sink->url('/nolang'), useContactLanguage => $false);
my $wk  = $create->('octo/cardPayments, octo/pricing', event => 'booking_update', url => $sink->url('/card'));
ok($wp->{id} && $wp2->{id} && $wc->{id} && $wn->{id} && $wk->{id}, 'webhooks created');

$sink->octo_state({ 'b-1' => { status => 'ON_HOLD', contact => { locales => ['es'] } } });
emit($db, 'booking_update', { uuid => 'b-1' }, 'res-a', 'es');

my %got = map { $_ => $sink->wait_for(path => "/$_")->[0] } qw(pricing pricing2 content nolang card);
ok((5 == grep { $_ } values %got), 'every webhook got the event');
is_deeply($got{pricing}{json}{booking}, { uuid => 'b-1', status => 'ON_HOLD', contact => { locales => ['es'] },
                                          pricing => { retail => 1000, currency => 'EUR' } },
          'octo/pricing: the booking as GET /bookings/b-1 answers with pricing');
is_deeply($got{content}{json}{booking}, { uuid => 'b-1', status => 'ON_HOLD', contact => { locales => ['es'] },
                                          title => 'Tour (es)' },
          'octo/content + useContactLanguage: the Spanish view, no pricing');
is($got{nolang}{json}{booking}{title}, 'Tour (default)', 'useContactLanguage false: no Accept-Language');
is($got{content}{headers}{'content-language'}, 'es', 'Content-Language es');
ok(!exists $got{card}{json}{booking}{cardPayment}, 'octo/cardPayments: cardPayment stripped');
unlike($got{card}{body}, qr/pi_fake_secret/, 'no card session anywhere');
is($got{card}{json}{booking}{pricing}{retail}, 1000, 'the rest of the cardPayments view is there');
is(q_at($db, q{SELECT count(*) FROM octo_webhooks.resolved_states WHERE object::text LIKE '%cardPayment%'
                  OR object::text LIKE '%pi_fake_secret%'})->[0][0], 0,
   'cardPayment is stripped before the view is stored (resolved_states)');
cmp_ok(q_at($db, q{SELECT count(*) FROM octo_webhooks.resolved_states WHERE state_key LIKE '%cardPayments%'})->[0][0], '>=', 1,
       '... where the cardPayments view is stored');
is_deeply($got{pricing}{json}{diff}, [], "a view's first event: diff []");

my @fetch = grep { $_->{path} =~ m{^/octo-api/} } @{ $sink->requests };
is(scalar @fetch, 4, 'four distinct views, four fetches (the two pricing+es webhooks share one)');
is_deeply([ sort map { ($_->{headers}{'octo-capabilities'} // '') . ' | ' . ($_->{headers}{'accept-language'} // '-') } @fetch ],
          [ 'octo/cardPayments,octo/pricing | es', 'octo/content | -', 'octo/content | es', 'octo/pricing | es' ],
          'the fake API saw each webhook\'s capabilities and Accept-Language');
ok((4 == grep { ($_->{headers}{authorization} // '') eq 'Bearer supplier-api-token' } @fetch), 'with the supplier API token');
ok((4 == grep { $_->{method} eq 'GET' && $_->{path} eq '/octo-api/bookings/b-1' } @fetch), 'GET {base}/bookings/{uuid}');

# the booking changes: each view gets its diff
$sink->octo_state({ 'b-1' => { status => 'CONFIRMED', contact => { locales => ['es'] } } });
emit($db, 'booking_update', { uuid => 'b-1' }, 'res-a', 'es');
my $p2 = $sink->wait_for(path => '/pricing', count => 2)->[1];
is_deeply($p2->{json}{diff}, [ { op => 'replace', path => '/status', was => 'ON_HOLD', value => 'CONFIRMED' } ],
          'second event: the diff of the pricing view');
my $c2 = $sink->wait_for(path => '/content', count => 2)->[1];
is_deeply($c2->{json}{diff}, [ { op => 'replace', path => '/status', was => 'ON_HOLD', value => 'CONFIRMED' } ],
          'and of the content view');
my $k2 = $sink->wait_for(path => '/card', count => 2)->[1];
unlike(JSON::PP->new->encode($k2->{json}{diff}), qr/cardPayment/, 'no cardPayment in the diff either');

# no language with the event: the contact's is learnt from a first fetch, then asked for
$sink->octo_state({ 'b-1' => { status => 'CONFIRMED' }, 'b-de' => { status => 'CONFIRMED', contact => { locales => ['de-AT'] } } });
emit($db, 'booking_update', { uuid => 'b-de' }, 'res-a');
my $de = $sink->wait_for(path => '/content', count => 3)->[2];
is($de->{json}{booking}{uuid}, 'b-de', 'b-de delivered');
is($de->{json}{booking}{title}, 'Tour (de-AT)', "useContactLanguage without an event language: the contact's language");
is($de->{headers}{'content-language'}, 'de-AT', 'and Content-Language says so');
my @defetch = grep { $_->{path} eq '/octo-api/bookings/b-de' && ($_->{headers}{'octo-capabilities'} // '') eq 'octo/content' } @{ $sink->requests };
is_deeply([ sort map { $_->{headers}{'accept-language'} // '-' } @defetch ], [ '-', '-', 'de-AT' ],
          'content views: one fetch to learn the contact, one in de-AT; the useContactLanguage-false view once without');

# a language that is not a tag never reaches a header of the fetch
$sink->octo_state({ 'b-1' => { status => 'CONFIRMED' }, 'b-evil' => { status => 'CONFIRMED' } });
emit($db, 'booking_update', { uuid => 'b-evil' }, 'res-a', "es\r\nX-Evil: 1");
$sink->wait_for(path => '/content', count => 4);
my @evil = grep { $_->{path} eq '/octo-api/bookings/b-evil' } @{ $sink->requests };
ok(@evil >= 1, 'b-evil fetched');
ok(!(grep { exists $_->{headers}{'x-evil'} } @evil), 'nothing injected');
ok(!(grep { ($_->{headers}{'accept-language'} // '') =~ /es|X-Evil/ } @evil), 'the bad language is not sent');

# products and availability
my $wprod = $create->('octo/pricing', event => 'product_update', url => $sink->url('/product'));
my $wav = $create->(undef, event => 'availability_update', url => $sink->url('/avail'));
$sink->octo_state({ 'p-1' => { internalName => 'Walk' }, 'availability:2026-05-14T09:00:00-04:00' => { status => 'SOLD_OUT' } });
emit($db, 'product_update', { id => 'p-1' });
emit($db, 'availability_update', { id => '2026-05-14T09:00:00-04:00', productId => 'p-1', optionId => 'DEFAULT' });
my $pr = $sink->wait_for(path => '/product')->[0];
is_deeply($pr->{json}{product}, { id => 'p-1', internalName => 'Walk', pricing => { retail => 1000, currency => 'EUR' } },
          'product_update: GET {base}/products/{id}');
my $av = $sink->wait_for(path => '/avail')->[0];
is_deeply($av->{json}{availability}, { id => '2026-05-14T09:00:00-04:00', productId => 'p-1', optionId => 'DEFAULT', status => 'SOLD_OUT' },
          'availability_update: the item of POST {base}/availability');
is_deeply([ $av->{json}{productId}, $av->{json}{optionId} ], ['p-1', 'DEFAULT'], 'with productId and optionId on top');
my ($post) = grep { $_->{path} eq '/octo-api/availability' } @{ $sink->requests };
is_deeply($post->{json}, { productId => 'p-1', optionId => 'DEFAULT', availabilityIds => ['2026-05-14T09:00:00-04:00'] },
          'POST /availability asked for that availability');

# a failing fetch is a failed attempt, retried on the schedule
my $wm = $create->(undef, event => 'booking_update', url => $sink->url('/missing'));
emit($db, 'booking_update', { uuid => 'b-later' }, 'res-a');
wait_until(sub { q_at($db, q{SELECT count(*) FROM octo_webhooks.attempts a JOIN octo_webhooks.deliveries d ON d.id = a.delivery_id
                             WHERE d.webhook_id = $1}, $wm->{id})->[0][0] >= 1 }, 10);
my $err = q_at($db, q{SELECT a.error, a.status_code FROM octo_webhooks.attempts a JOIN octo_webhooks.deliveries d ON d.id = a.delivery_id
                      WHERE d.webhook_id = $1 ORDER BY a.id LIMIT 1}, $wm->{id})->[0];
is($err->[0] // '', "resolving the object: the supplier's API answered HTTP 404",
   'the attempt says the fetch failed and how, without the supplier API\'s address');
like($h->error_log, qr{OWH00530: resolve: GET http://127\.0\.0\.1:\d+/octo-api/bookings/b-later failed for 1 deliveries: the supplier's API answered HTTP 404},
     'the full detail goes to the error log');
is(scalar @{ $sink->requests('/missing') }, 0, 'nothing was sent to the endpoint');
$sink->octo_state({ 'b-later' => { status => 'CONFIRMED' } });
my $m = $sink->wait_for(path => '/missing', timeout => 15)->[0];
is($m->{json}{booking}{status}, 'CONFIRMED', 'once the object exists, the retry delivers it');

# an availability event without what POST /availability needs: a failed attempt saying so
emit($db, 'availability_update', { id => 'no-product' });
wait_until(sub { q_at($db, q{SELECT count(*) FROM octo_webhooks.attempts a JOIN octo_webhooks.deliveries d ON d.id = a.delivery_id
                             WHERE d.webhook_id = $1 AND d.object_key = 'no-product'}, $wav->{id})->[0][0] >= 1 }, 10);
like(q_at($db, q{SELECT a.error FROM octo_webhooks.attempts a JOIN octo_webhooks.deliveries d ON d.id = a.delivery_id
                 WHERE d.webhook_id = $1 AND d.object_key = 'no-product'}, $wav->{id})->[0][0] // '',
     qr/needs its id, productId and optionId/, 'an availability without productId cannot be resolved, and the attempt says why');

# a trigger's sample object is sent as it is, not resolved
# (the other booking webhooks may still be retrying b-later: not counted)
my $fetches = sub { scalar grep { $_->{path} =~ m{^/octo-api/} && $_->{path} !~ /b-later/ } @{ $sink->requests } };
my $f0 = $fetches->();
my $tr = api('POST', "/webhooks/$wm->{id}/trigger", base => $h->base, token => $tok, json => { reference => 'TEST-1' });
is($tr->{code}, 200, 'trigger accepted');
my $t = $sink->wait_for(path => '/missing', count => 2)->[1];
is($t->{json}{booking}{supplierReference}, 'TEST-1', 'the trigger delivers its sample booking');
is($fetches->(), $f0, 'without fetching it');

# a subscription (thin payload) needs no fetch
my $ntok = token('res-a', ['octo:read.notifications', 'octo:write.notifications'], db => $db);
api('POST', '/v1/notifications/subscriptions', base => $h->base, token => $ntok,
       json => { url => $sink->url('/notify'), notificationTypes => ['AVAILABILITY_UPDATE'] });
emit($db, 'availability_update', { id => '2026-06-01T10:00:00+02:00', productId => 'p-9', optionId => 'DEFAULT' });
my $n = $sink->wait_for(path => '/notify')->[0];
is_deeply($n->{json}{payload}, { productId => 'p-9', localDateStart => '2026-06-01', localDateEnd => '2026-06-01' },
          'a subscription gets its thin payload from the identifiers');
$sink->wait_for(path => '/avail', count => 2);
is(scalar(grep { $_->{path} eq '/octo-api/availability' && $_->{body} =~ /2026-06-01/ } @{ $sink->requests }), 1,
   'one fetch for that event: the octo webhook\'s, none for the subscription');

done_testing();
