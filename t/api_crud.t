# List, get, patch, delete by id and by url; masking; prefixes; 404/405;
# response headers.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use lib 't/lib';
use OWHTest;
use JSON::PP ();

my $tok = token("crud-$$", ['octo:read.webhooks', 'octo:write.webhooks']);
my $F = JSON::PP::false;

my $r = api('GET', '/webhooks', token => $tok);
is($r->{code}, 200, 'list: 200');
is($r->{body}, '[]', 'empty list is []');

my @ids;
for my $i (1 .. 4) {
    push @ids, api('POST', '/webhooks', token => $tok, json => { event => 'booking_update', url => "https://e.com/$i" })->{json}{id};
}
$r = api('GET', '/webhooks', token => $tok);
is_deeply([ map { $_->{id} } @{ $r->{json} } ], \@ids, 'listed in creation order');
is($r->{headers}->header('Content-Type'), 'application/json', 'list is JSON');
$r = api('GET', '/webhooks/', token => $tok);
is(scalar @{ $r->{json} || [] }, 4, 'trailing slash is the same route');

$r = api('GET', "/webhooks/$ids[1]", token => $tok);
is($r->{code}, 200, 'get one');
is($r->{json}{url}, 'https://e.com/2', 'the right one');
is(api('GET', '/webhooks/' . uc($ids[1]), token => $tok)->{code}, 200, 'ids are case-insensitive UUIDs');
# httpd itself refuses an encoded NUL before any handler runs: still a 404
is(api('GET', '/webhooks/%00', token => $tok)->{code}, 404, "get '%00': 404");
for my $bad ('abc', '00000000-0000-0000-0000-000000000000', "' OR 1=1 --", 'x' x 100, '..') {
    $r = api('GET', "/webhooks/$bad", token => $tok);
    is($r->{code} . ' ' . ($r->{json}{error} // ''), '404 NOT_FOUND', "get '$bad': 404");
}

# PATCH
$r = api('PATCH', "/webhooks/$ids[0]", token => $tok, caps => 'pricing', json => { active => $F, headers => { 'X-A' => 'b' } });
is($r->{code}, 200, 'patch: 200');
ok(!$r->{json}{active}, 'active changed');
is_deeply($r->{json}{headers}, { 'X-A' => 'b' }, 'headers replaced');
is_deeply($r->{json}{capabilities}, ['octo/pricing'], 'capabilities from the header');
is($r->{json}{url}, 'https://e.com/1', 'url kept');
$r = api('PATCH', "/webhooks/$ids[0]", token => $tok, json => {});
is($r->{code}, 200, 'empty patch');
is_deeply($r->{json}{capabilities}, [], 'capabilities recalculated on every PATCH (no header: none)');
ok(!$r->{json}{active}, 'empty patch keeps the rest');
$r = api('PATCH', "/webhooks/$ids[0]", token => $tok, json => { event => 'order.updated' });
is_deeply($r->{json}{capabilities}, ['octo/cart'], 'becoming an order webhook adds octo/cart');
is(api('GET', "/webhooks/$ids[0]", token => $tok)->{json}{event}, 'order.updated', 'patch persisted');
is(api('PATCH', '/webhooks/00000000-0000-0000-0000-000000000000', token => $tok, json => {})->{code}, 404, 'patch unknown: 404');

# credentials: masked everywhere, kept when the masked form comes back
my $cid = api('POST', '/webhooks', token => $tok, json => { event => 'product_update', url => 'https://carol:pw-abc-123@e.com/p' })->{json}{id};
for my $req ([ 'GET', "/webhooks/$cid" ], [ 'GET', '/webhooks' ]) {
    $r = api(@$req, token => $tok);
    unlike($r->{body}, qr/pw-abc-123/, "$req->[0] $req->[1] never shows the password");
}
$r = api('PATCH', "/webhooks/$cid", token => $tok, json => { url => 'https://carol:****@e.com/p', active => $F });
is($r->{json}{url}, 'https://carol:****@e.com/p', 'masked url sent back');
is(psql_query('SELECT url FROM octo_webhooks.webhooks WHERE id = $1::uuid', $cid)->[0][0],
   'https://carol:pw-abc-123@e.com/p', 'stored credentials kept');
$r = api('PATCH', "/webhooks/$cid", token => $tok, json => { url => 'https://carol:newpw@e.com/p' });
is(psql_query('SELECT url FROM octo_webhooks.webhooks WHERE id = $1::uuid', $cid)->[0][0],
   'https://carol:newpw@e.com/p', 'a new password replaces the old');
unlike($r->{body}, qr/newpw/, 'PATCH answer masks it');

# DELETE by id: the deleted object back (Peek), then 404
$r = api('DELETE', "/webhooks/$ids[3]", token => $tok);
is($r->{code}, 200, 'delete: 200');
is($r->{json}{id}, $ids[3], 'the deleted object');
is($r->{json}{url}, 'https://e.com/4', 'with its fields');
is(api('GET', "/webhooks/$ids[3]", token => $tok)->{code}, 404, 'gone');
is(api('DELETE', "/webhooks/$ids[3]", token => $tok)->{code}, 404, 'second delete: 404');
$r = api('DELETE', "/webhooks/$cid", token => $tok);
unlike($r->{body}, qr/newpw/, 'DELETE answer masks the password');

# DELETE by url
api('POST', '/webhooks', token => $tok, json => { event => 'order_update', url => 'https://e.com/2' });
$r = api('DELETE', '/webhooks', token => $tok, query => 'url=' . 'https%3A%2F%2Fe.com%2F2');
is($r->{code}, 200, 'delete by url (query)');
is(scalar @{ $r->{json} }, 2, 'both webhooks with that url');
is_deeply([ map { $_->{url} } @{ $r->{json} } ], [ 'https://e.com/2', 'https://e.com/2' ], 'deleted objects returned');
$r = api('DELETE', '/webhooks', token => $tok, json => { url => 'https://e.com/3' });
is(scalar @{ $r->{json} }, 1, 'delete by url (body)');
$r = api('DELETE', '/webhooks', token => $tok, json => { url => 'https://e.com/none' });
is($r->{body}, '[]', 'no match: []');
my $mid = api('POST', '/webhooks', token => $tok, json => { event => 'booking_update', url => 'https://dave:pw9@e.com/m' })->{json}{id};
$r = api('DELETE', '/webhooks', token => $tok, json => { url => 'https://dave:****@e.com/m' });
is($r->{json}[0]{id}, $mid, 'delete by the masked url');
$r = api('DELETE', '/webhooks', token => $tok);
is($r->{code} . ' ' . ($r->{json}{error} // ''), '400 BAD_REQUEST', 'delete by url without url: 400');
$r = api('DELETE', '/webhooks', token => $tok, json => { url => 5 });
is($r->{code}, 400, 'url must be a string');

# routes and methods
for my $case ([ 'PUT', '/webhooks', 'GET, POST, DELETE' ], [ 'POST', "/webhooks/$ids[0]", 'GET, PATCH, DELETE' ],
              [ 'PUT', "/webhooks/$ids[0]", 'GET, PATCH, DELETE' ]) {
    $r = api($case->[0], $case->[1], token => $tok);
    is($r->{code}, 405, "$case->[0] $case->[1]: 405");
    is($r->{headers}->header('Allow'), $case->[2], 'Allow header');
    ok($r->{json}{error}, 'OCTO error body');
}
for my $p ('/webhook', '/webhooks/a/b/c', '/', '/notwebhooks') {
    $r = api('GET', $p, token => $tok);
    is($r->{code} . ' ' . ($r->{json}{error} // ''), '404 NOT_FOUND', "GET $p: 404");
}

# another prefix serves the same routes
$r = api('GET', '/webhooks', token => $tok, prefix => '/alt/prefix');
is($r->{code}, 200, 'the /alt/prefix Location works');
is_deeply($r->{json}, api('GET', '/webhooks', token => $tok)->{json}, 'same data as under /octo');

# headers on every answer
$r = api('GET', '/webhooks', token => $tok, caps => '  octo/webhooks, octo/pricing  ');
is($r->{headers}->header('Octo-Capabilities'), 'octo/webhooks, octo/pricing', 'Octo-Capabilities echoed, trimmed');
$r = api('GET', '/nothing', caps => 'octo/webhooks');
is($r->{headers}->header('Octo-Capabilities'), 'octo/webhooks', 'echoed on errors too');
$r = api('GET', '/webhooks', token => $tok);
is($r->{headers}->header('Octo-Capabilities'), undef, 'not invented when absent');
is($r->{headers}->header('Cache-Control'), 'no-store', 'no-store');

done_testing();
