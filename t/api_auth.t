# Authentication and abilities (the OCTO authentication page's rules).
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use lib 't/lib';
use OWHTest;
use Time::HiRes qw(time sleep);



my $c = "auth-$$";
my $rw = token($c, ['octo:read.webhooks', 'octo:write.webhooks']);
my $ro = token($c, ['octo:read.webhooks']);
my $wo = token($c, ['octo:write.webhooks']);
my $notif = token($c, ['octo:read.notifications', 'octo:write.notifications']);

my $r = api('GET', '/webhooks');
is($r->{code}, 401, 'no Authorization: 401');
is($r->{json}{error}, 'UNAUTHORIZED', 'UNAUTHORIZED');
like($r->{json}{errorMessage}, qr/API Key/, 'canonical message');
like($r->{headers}->header('WWW-Authenticate') // '', qr/^Bearer/, 'WWW-Authenticate: Bearer');
is($r->{headers}->header('Content-Type'), 'application/json', 'JSON error');

for my $bad ('Basic dXNlcjpwYXNz', 'Bearer', 'Bearer ', 'Bearer owh_unknown_token', "Bearer ${rw}x", 'Bearer a b') {
    $r = api('GET', '/webhooks', auth => $bad);
    is($r->{code} . ' ' . ($r->{json}{error} // ''), '403 FORBIDDEN', "'$bad' is forbidden");
}

$r = api('GET', '/webhooks', token => $rw);
is($r->{code}, 200, 'read+write token can GET');
$r = api('GET', '/webhooks', token => $ro);
is($r->{code}, 200, 'read token can GET');
$r = api('POST', '/webhooks', token => $ro, json => { event => 'booking_update', url => 'https://e.com/h' });
is($r->{code} . ' ' . ($r->{json}{error} // ''), '403 FORBIDDEN', 'read token cannot POST');
$r = api('GET', '/webhooks', token => $wo);
is($r->{code}, 403, 'write-only token cannot GET');
$r = api('POST', '/webhooks', token => $wo, json => { event => 'booking_update', url => 'https://e.com/h' });
is($r->{code}, 200, 'write token can POST');
my $id = $r->{json}{id};
$r = api('DELETE', "/webhooks/$id", token => $ro);
is($r->{code}, 403, 'read token cannot DELETE');
$r = api('PATCH', "/webhooks/$id", token => $ro, json => { active => JSON::PP::false });
is($r->{code}, 403, 'read token cannot PATCH');
$r = api('GET', '/webhooks', token => $notif);
is($r->{code}, 200, 'octo:read.notifications reads webhooks too');
$r = api('DELETE', "/webhooks/$id", token => $notif);
is($r->{code}, 200, 'octo:write.notifications deletes');

# revoked tokens
my $gone = token($c, ['octo:read.webhooks']);
is(api('GET', '/webhooks', token => $gone)->{code}, 200, 'token works before revocation');
psql_query('SELECT octo_webhooks.revoke_token($1)', $gone);
# each child remembers a token's lookup for up to a second, so the property
# is one of time (no condition to poll: which child answers is not ours to
# pick): a second after the revocation, every answer refuses the token
sleep 1.1;
my @after = map { api('GET', '/webhooks', token => $gone)->{code} } 1 .. 12;
is_deeply(\@after, [ (403) x 12 ], 'a second after the revocation, every child refuses it');
$r = api('GET', '/webhooks', token => $gone);
is($r->{code}, 403, 'revoked token: 403');
is($r->{json}{error}, 'FORBIDDEN', 'FORBIDDEN');

# tokens are stored hashed only
my $rows = psql_query('SELECT count(*) FROM octo_webhooks.tokens WHERE encode(token_hash, $1) = $2 OR token_hash::text LIKE $3',
                      'hex', $rw, '%owh_%');
is($rows->[0][0], 0, 'no plaintext token in the database');

# unknown routes and methods don't need a token, and answer in JSON
$r = api('GET', '/nope');
is($r->{code} . ' ' . ($r->{json}{error} // ''), '404 NOT_FOUND', 'unknown route: 404 NOT_FOUND');

# r->user mode: the connection is the user another module authenticated
$r = api('GET', '/webhooks', prefix => '/ruser');
is($r->{code}, 401, 'remote-user mode without credentials: 401');
$r = api('POST', '/webhooks', prefix => '/ruser', auth => 'Basic ' . MIME_b64('ruser-conn:secret-pw'),
         json => { event => 'product_update', url => 'https://e.com/r' });
is($r->{code}, 200, 'remote-user mode creates');
$rows = psql_query('SELECT connection_id FROM octo_webhooks.webhooks WHERE id = $1::uuid', $r->{json}{id} // '00000000-0000-0000-0000-000000000000');
is($rows->[0][0], 'ruser-conn', 'the webhook belongs to r->user');

done_testing();

sub MIME_b64 { require MIME::Base64; MIME::Base64::encode_base64($_[0], '') }
