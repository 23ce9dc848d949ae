# Deliveries: payload shape per event type, request headers, Basic auth from
# URL credentials, supplier, inactive webhooks, emit()'s argument errors.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use lib 't/lib';
use OWHDelivery;
use MIME::Base64 qw(encode_base64);
use JSON::PP ();
use File::Temp ();

my $db = new_database();
my $h = start_httpd(conninfo => $db, directives => join("\n",
    'OctoWebhooksSupplierId "sup-1"', 'OctoWebhooksSupplierName "City Tours"',
    'OctoWebhooksSupplierReference "CITY"', 'OctoWebhooksSupplierWebsite "https://city.example.com"'));
my $sink = start_sink();
my $tok = token('res-a', ['octo:read.webhooks', 'octo:write.webhooks'], db => $db);
my $create = sub { api('POST', '/webhooks', base => $h->base, token => $tok, @_)->{json} };

(my $cred_url = $sink->url('/booking')) =~ s{http://}{http://alice:pa%3Ass\@};
my $wb = $create->(caps => 'pricing', json => { event => 'booking_update', url => $cred_url, headers => { 'X-Custom' => 'c1', 'X-Empty' => '' } });
my $wo = $create->(json => { event => 'order.updated', url => $sink->url('/order') });
my $wa = $create->(json => { event => 'availability_update', url => $sink->url('/availability') });
my $wp = $create->(json => { event => 'product_update', url => $sink->url('/product'), useContactLanguage => JSON::PP::false });
my $wi = $create->(json => { event => 'booking_update', url => $sink->url('/inactive'), active => JSON::PP::false });
ok($wb->{id} && $wo->{id} && $wa->{id} && $wp->{id} && $wi->{id}, 'webhooks created');

emit($db, 'booking_update', { uuid => 'b-1', status => 'CONFIRMED', unitItems => [] }, 'res-a', 'es');
emit($db, 'order_update', { id => 'o-1', status => 'ON_HOLD' }, 'res-a');
emit($db, 'availability.updated', { id => '2026-05-14T09:00:00-04:00', productId => 'p-1', optionId => 'DEFAULT', status => 'AVAILABLE' });
emit($db, 'product_update', { id => 'p-1', internalName => 'Walk' }, undef, 'de', { id => 'own', name => 'Event Supplier' });

my $b = $sink->wait_for(path => '/booking')->[0];
ok($b, 'booking delivered');
is($b->{method}, 'POST', 'POST');
is($b->{headers}{'content-type'}, 'application/json', 'Content-Type: application/json');
like($b->{headers}{'user-agent'}, qr{^mod_octo_webhooks/\d}, 'User-Agent names the module');
like($b->{headers}{'webhook-id'}, qr/^msg_[0-9a-f-]{36}$/, 'webhook-id');
like($b->{headers}{'webhook-timestamp'}, qr/^\d{10}$/, 'webhook-timestamp');
is($b->{headers}{authorization}, 'Basic ' . encode_base64('alice:pa:ss', ''), 'Basic auth from the URL credentials (decoded)');
unlike($b->{uri}, qr/alice|pa/, 'no credentials in the request line');
is($b->{headers}{'x-custom'}, 'c1', 'custom header');
ok(exists $b->{headers}{'x-empty'}, 'empty custom header sent');
is($b->{headers}{'content-language'}, 'es', 'Content-Language from the event (useContactLanguage)');
my $j = $b->{json};
is_deeply([sort keys %$j], [sort qw(event webhook supplier booking diff)], 'booking payload keys');
is($j->{event}, 'booking_update', 'event');
is($j->{webhook}{id}, $wb->{id}, 'webhook object');
like($j->{webhook}{url}, qr{^http://alice:\*\*\*\*\@}, 'webhook url masked in the payload');
is_deeply($j->{webhook}{capabilities}, ['octo/pricing'], 'webhook capabilities');
is_deeply($j->{supplier}, { id => 'sup-1', name => 'City Tours', reference => 'CITY', website => 'https://city.example.com' },
          'supplier from the directives');
is_deeply($j->{booking}, { uuid => 'b-1', status => 'CONFIRMED', unitItems => [] }, 'booking object');
is_deeply($j->{diff}, [], 'diff []');

my $o = $sink->wait_for(path => '/order')->[0]{json};
is($o->{event}, 'order.updated', 'order event in the webhook spelling');
is($o->{order}{id}, 'o-1', 'order object');
is_deeply($o->{webhook}{capabilities}, ['octo/cart'], 'order webhook has octo/cart');
ok(exists $o->{diff}, 'order has diff');

my $a = $sink->wait_for(path => '/availability')->[0]{json};
is($a->{availability}{id}, '2026-05-14T09:00:00-04:00', 'availability object');
is($a->{productId}, 'p-1', 'top-level productId');
is($a->{optionId}, 'DEFAULT', 'top-level optionId');
ok(!exists $a->{diff}, 'availability has no diff');

my $p = $sink->wait_for(path => '/product')->[0];
is($p->{json}{product}{internalName}, 'Walk', 'product object');
is_deeply($p->{json}{supplier}, { id => 'own', name => 'Event Supplier' }, "the event's own supplier wins");
ok(!exists $p->{headers}{'content-language'}, 'no Content-Language when useContactLanguage is false');

ok(wait_settled($db), 'every delivery made');
is(scalar @{ $sink->requests('/inactive') }, 0, 'inactive webhooks get nothing');
my $rows = q_at($db, "SELECT status, attempts FROM octo_webhooks.deliveries ORDER BY created_at");
is_deeply([ map { "$_->[0]/$_->[1]" } @$rows ], [ ('succeeded/1') x 4 ], 'four deliveries, one attempt each, succeeded');
$rows = q_at($db, 'SELECT status_code, latency_ms IS NOT NULL, response_excerpt, dispatcher IS NOT NULL FROM octo_webhooks.attempts');
is_deeply($rows->[0], [200, 't', 'sink says 200', 't'], 'attempt recorded: status, latency, excerpt, dispatcher');

# emit() refuses bad arguments with an SQL error that names the problem
for my $case ([ 'nope', { uuid => 'x' }, qr/unknown event/ ], [ 'booking_update', [1], qr/must be a JSON object/ ],
              [ 'booking_update', { status => 'x' }, qr/needs "uuid"/ ], [ 'product_update', { name => 'x' }, qr/needs "id"/ ],
              [ 'availability_update', { productId => 'p' }, qr/availability id/ ]) {
    my $f = File::Temp->new(SUFFIX => '.sql');
    print $f "SELECT octo_webhooks.emit(:'ev', :'obj'::jsonb);\n";
    close $f;
    my $obj = JSON::PP->new->encode($case->[1]);
    my $err = `psql -X -q -d '$db' -v ev='$case->[0]' -v obj='$obj' -f $f 2>&1`;
    like($err, $case->[2], "emit refuses: $case->[0] " . JSON::PP->new->encode($case->[1]));
}
# emit is transactional: a rolled-back transaction leaves no event
my $before = q_at($db, 'SELECT count(*) FROM octo_webhooks.events')->[0][0];
`psql -X -q -d '$db' -c "BEGIN; SELECT octo_webhooks.emit('booking_update', '{\\"uuid\\": \\"rb\\"}'); ROLLBACK;" 2>&1`;
is(q_at($db, 'SELECT count(*) FROM octo_webhooks.events')->[0][0], $before, 'a rolled-back emit leaves nothing');
done_testing();
