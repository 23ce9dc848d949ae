# The notifications dialect (seed 003, issue 5): /v1/notifications/subscriptions
# create (201) / list / get / PATCH / delete (204), types in any case answered
# uppercase, the notifications abilities, tenancy, validation with nothing
# stored; and delivery through the same queue: thin payloads in the documented
# envelope, BOOKING_UPDATE only to the connection that made the booking,
# retries like any webhook.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use lib 't/lib';
use OWHDelivery;

my $db = new_database();
my $h = start_httpd(conninfo => $db, directives => 'OctoWebhooksRetrySchedule "1s 1s"');
my $sink = start_sink();
my $rw = token('res-a', ['octo:read.notifications', 'octo:write.notifications'], db => $db);
my $ro = token('res-a', ['octo:read.notifications'], db => $db);
my $wh_only = token('res-a', ['octo:read.webhooks', 'octo:write.webhooks'], db => $db);
my $other = token('res-b', ['octo:read.notifications', 'octo:write.notifications'], db => $db);
my $base = '/v1/notifications/subscriptions';
my $call = sub { my ($method, $path, %o) = @_; api($method, $path, base => $h->base, token => $rw, caps => 'notifications', %o) };
my $count = sub { q_at($db, "SELECT count(*) FROM octo_webhooks.webhooks WHERE dialect = 'notifications'")->[0][0] };

# ---- create --------------------------------------------------------------
my $r = $call->('POST', $base, json => { url => $sink->url('/n'), notificationTypes => ['booking_update', 'Product_Update'],
                                         headers => { 'X-Auth' => 'k1' } });
is($r->{code}, 201, 'create: 201 Created');
my $s = $r->{json};
like($s->{id}, qr/^[0-9a-f-]{36}$/, 'an id');
is($s->{url}, $sink->url('/n'), 'url');
is_deeply($s->{notificationTypes}, ['BOOKING_UPDATE', 'PRODUCT_UPDATE'], 'types accepted in any case, answered uppercase');
is_deeply($s->{headers}, { 'X-Auth' => 'k1' }, 'custom headers');
like($r->{headers}->header('Location'), qr{\Q$base\E/\Q$s->{id}\E$}, 'Location names the new subscription');
is($r->{headers}->header('Octo-Capabilities'), 'notifications', 'the capability echoed');
$r = $call->('POST', $base, caps => 'octo/notifications',
             json => { url => $sink->url('/avail'), notificationTypes => ['AVAILABILITY_UPDATE', 'availability_update'] });
is($r->{code}, 201, 'the prefixed capability works too');
my $sa = $r->{json};
is_deeply($sa->{notificationTypes}, ['AVAILABILITY_UPDATE'], 'duplicate types folded');

# a path with CR LF in it reaches no header: routes resolve under the
# handler's <Location> only (issue 12 #3), so it is not a route at all
$r = $call->('POST', '/x%0d%0aX-Injected:%201' . $base,
             json => { url => $sink->url('/inj'), notificationTypes => ['PRODUCT_UPDATE'] });
is($r->{code}, 404, 'a decoded CR LF before the route: 404');
ok(!defined $r->{headers}->header('X-Injected'), 'and no header injected');
ok(!defined $r->{headers}->header('Location'), 'no Location');

# ---- validation: OCTO errors, nothing stored -----------------------------
my $before = $count->();
for my $case (
    [ { url => $sink->url('/x') }, qr/notificationTypes is required/, 'types missing' ],
    [ { url => $sink->url('/x'), notificationTypes => [] }, qr/notificationTypes/, 'types empty' ],
    [ { url => $sink->url('/x'), notificationTypes => ['ORDER_UPDATE'] }, qr/notificationTypes\[0\]/, 'ORDER_UPDATE is not a type' ],
    [ { url => $sink->url('/x'), notificationTypes => 'BOOKING_UPDATE' }, qr/notificationTypes/, 'types not an array' ],
    [ { url => $sink->url('/x'), notificationTypes => [1] }, qr/notificationTypes\[0\]/, 'a type not a string' ],
    [ { notificationTypes => ['BOOKING_UPDATE'] }, qr/url is required/, 'url missing' ],
    [ { url => 'ftp://x/', notificationTypes => ['BOOKING_UPDATE'] }, qr/url/, 'url not http(s)' ],
    [ { url => $sink->url('/x'), notificationTypes => ['BOOKING_UPDATE'], headers => { 'Bad Name' => 'v' } }, qr/header/, 'bad header' ],
) {
    my ($body, $msg, $name) = @$case;
    $r = $call->('POST', $base, json => $body);
    is($r->{code}, 400, "$name: 400");
    is($r->{json}{error}, 'BAD_REQUEST', "$name: OCTO error");
    like($r->{json}{errorMessage}, $msg, "$name: says why");
}
is(api('POST', $base, base => $h->base, token => $rw, body => '{"url":')->{code}, 400, 'malformed JSON: 400');
is($count->(), $before, 'nothing stored by bad requests');

# ---- abilities -------------------------------------------------------------
is(api('GET', $base, base => $h->base, token => $ro)->{code}, 200, 'read.notifications lists');
is(api('POST', $base, base => $h->base, token => $ro, json => { url => $sink->url('/x'), notificationTypes => ['BOOKING_UPDATE'] })->{code},
   403, 'read.notifications cannot create');
is(api('DELETE', "$base/$s->{id}", base => $h->base, token => $ro)->{code}, 403, 'read.notifications cannot delete');
is(api('GET', $base, base => $h->base, token => $wh_only)->{code}, 403, 'webhooks abilities do not grant subscriptions');
is(api('GET', $base, base => $h->base)->{code}, 401, 'no token: 401');
is(api('PUT', $base, base => $h->base, token => $rw)->{code}, 405, 'PUT: 405');

# ---- list, get, tenancy, dialects kept apart ------------------------------
$r = $call->('GET', $base);
is($r->{code}, 200, 'list: 200');
is_deeply([ map { $_->{id} } @{ $r->{json} } ], [ $s->{id}, $sa->{id} ], 'list: a plain array in creation order');
is_deeply($call->('GET', "$base/$s->{id}")->{json}, $s, 'get: the same object');
is(api('GET', "$base/$s->{id}", base => $h->base, token => $other)->{code}, 404, "another connection's: 404");
is_deeply(api('GET', $base, base => $h->base, token => $other)->{json}, [], 'another connection lists none');
my $wh = api('POST', '/webhooks', base => $h->base, token => $wh_only, json => { event => 'booking_update', url => $sink->url('/w') })->{json};
is(scalar(grep { $_->{id} eq $wh->{id} } @{ $call->('GET', $base)->{json} }), 0, 'webhooks are not subscriptions');
is(scalar(grep { $_->{id} eq $s->{id} } @{ api('GET', '/webhooks', base => $h->base, token => $wh_only)->{json} }), 0,
   'subscriptions are not webhooks');
is(api('GET', "/webhooks/$s->{id}", base => $h->base, token => $wh_only)->{code}, 404, 'nor reachable as one');
is($call->('GET', "$base/$wh->{id}")->{code}, 404, 'and a webhook is not reachable as a subscription');
is($call->('GET', "$base/not-a-uuid")->{code}, 404, 'a malformed id: 404');

# ---- update ---------------------------------------------------------------
$r = $call->('PATCH', "$base/$sa->{id}", json => { notificationTypes => ['availability_update', 'PRODUCT_UPDATE'] });
is($r->{code}, 200, 'PATCH: 200');
is_deeply($r->{json}{notificationTypes}, ['AVAILABILITY_UPDATE', 'PRODUCT_UPDATE'], 'types replaced');
is($r->{json}{url}, $sink->url('/avail'), 'url kept');
$r = $call->('PATCH', "$base/$sa->{id}", json => { notificationTypes => ['NOPE'] });
is($r->{code}, 400, 'PATCH with a bad type: 400');
is_deeply($call->('GET', "$base/$sa->{id}")->{json}{notificationTypes}, ['AVAILABILITY_UPDATE', 'PRODUCT_UPDATE'],
          'and nothing changed');
is(api('PATCH', "$base/$sa->{id}", base => $h->base, token => $other, json => { url => $sink->url('/steal') })->{code}, 404,
   "PATCH of another connection's: 404");

# ---- delivery ---------------------------------------------------------------
emit($db, 'booking_update', { uuid => 'b-hold', status => 'ON_HOLD' }, 'res-a');
emit($db, 'booking_update', { uuid => 'b-a', status => 'CONFIRMED', contact => { fullName => 'X' } }, 'res-a');
emit($db, 'booking_update', { uuid => 'b-b', status => 'CONFIRMED' }, 'res-b');
emit($db, 'booking_update', { uuid => 'b-none', status => 'CONFIRMED' });
emit($db, 'order_update', { id => 'o-1', status => 'CONFIRMED' }, 'res-a');
emit($db, 'product_update', { id => '42', internalName => 'Walk' });
emit($db, 'availability_update', { id => 'a-1', productId => '42', optionId => 'DEFAULT',
                                   localDateTimeStart => '2025-01-15T09:00:00+01:00', localDateTimeEnd => '2025-01-20T17:00:00+01:00' });
ok(wait_settled($db), 'every delivery made');
my $n = $sink->requests('/n');
is(scalar @$n, 2, 'the booking+product subscription got two (its confirmed booking, the product)');
ok(!(grep { ($_->{json}{payload}{uuid} // '') eq 'b-hold' } @$n), 'BOOKING_UPDATE: not for a booking on hold');
my ($nb) = grep { $_->{json}{type} eq 'BOOKING_UPDATE' } @$n;
my ($np) = grep { $_->{json}{type} eq 'PRODUCT_UPDATE' } @$n;
is_deeply($nb->{json}{payload}, { uuid => 'b-a' }, 'BOOKING_UPDATE: {uuid} of its own booking only');
is($nb->{json}{subscriptionId}, $s->{id}, 'envelope: subscriptionId');
like($nb->{json}{eventId}, qr/^\d+$/, 'envelope: eventId');
like($nb->{json}{createdAt}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/, 'envelope: createdAt');
is_deeply([ sort keys %{ $nb->{json} } ], [qw(createdAt eventId payload subscriptionId type)], 'envelope: nothing else');
is($nb->{headers}{'x-auth'}, 'k1', 'custom header sent');
like($nb->{headers}{'webhook-id'}, qr/^msg_/, 'webhook-id as for webhooks');
is_deeply($np->{json}{payload}, { productId => '42' }, 'PRODUCT_UPDATE: {productId}');
my $na = $sink->wait_for(path => '/avail', count => 2);
my ($aa) = grep { $_->{json}{type} eq 'AVAILABILITY_UPDATE' } @$na;
is_deeply($aa->{json}{payload}, { productId => '42', localDateStart => '2025-01-15', localDateEnd => '2025-01-20' },
          'AVAILABILITY_UPDATE: {productId, localDateStart, localDateEnd}');
is(scalar(grep { $_->{json}{type} eq 'PRODUCT_UPDATE' } @$na), 1, 'a PATCHed type is received');
is(scalar @{ $sink->requests('/w') }, 2, 'the octo webhook of res-a: its two bookings; one without a connection is nobody\'s');

# same queue, same retries
$sink->behave('/retry', codes => [500, 200]);
my $sr = $call->('POST', $base, json => { url => $sink->url('/retry'), notificationTypes => ['PRODUCT_UPDATE'] })->{json};
emit($db, 'product_update', { id => '43' });
my $rr = $sink->wait_for(path => '/retry', count => 2, timeout => 10);
is(scalar @$rr, 2, 'a failed delivery is retried');
is($rr->[0]{headers}{'webhook-id'}, $rr->[1]{headers}{'webhook-id'}, 'as the same message');
is(q_at($db, 'SELECT status, attempts FROM octo_webhooks.deliveries WHERE webhook_id = $1', $sr->{id})->[0][1], 2,
   'two attempts recorded');

# the attempt log of /webhooks/{id} serves a subscription's id too
$r = api('GET', "/webhooks/$sr->{id}/deliveries", base => $h->base, token => $rw);
is($r->{code}, 200, "a subscription's attempt log: GET /webhooks/{id}/deliveries");
is($r->{json}{deliveries}[0]{attemptCount}, 2, 'with its two attempts');
is(api('GET', "/webhooks/$sr->{id}/deliveries", base => $h->base, token => $other)->{code}, 404, "not another connection's");

# ---- delete ----------------------------------------------------------------
is(api('DELETE', "$base/$s->{id}", base => $h->base, token => $other)->{code}, 404, "DELETE of another connection's: 404");
$r = $call->('DELETE', "$base/$s->{id}");
is($r->{code}, 204, 'DELETE: 204');
is($r->{body}, '', 'no body');
is($call->('GET', "$base/$s->{id}")->{code}, 404, 'gone');
is($call->('DELETE', "$base/$s->{id}")->{code}, 404, 'a second DELETE: 404');

done_testing();
