# Every bad input: 400 BAD_REQUEST (413 for size) with an OCTO error body,
# nothing stored, no secret echoed; the same rules on PATCH.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use lib 't/lib';
use OWHTest;

my $c = "valid-$$";
my $tok = token($c, ['octo:read.webhooks', 'octo:write.webhooks']);
my $count = sub { psql_query('SELECT count(*) FROM octo_webhooks.webhooks WHERE connection_id = $1', $c)->[0][0] };
my $ok = 'https://e.com/hook';

my @raw = (
    [ 'not JSON',            'event=booking_update' ],
    [ 'truncated JSON',      '{"event":"booking_update","url":' ],
    [ 'JSON array',          '[{"event":"booking_update","url":"https://e.com"}]' ],
    [ 'JSON string',         '"booking_update"' ],
    [ 'JSON number',         '42' ],
    [ 'JSON null',           'null' ],
    [ 'duplicate keys',      '{"event":"booking_update","event":"order_update","url":"https://e.com"}' ],
    [ 'trailing garbage',    '{"event":"booking_update","url":"https://e.com"} {}' ],
    [ 'empty body',          '' ],
    [ 'NUL escape in url',   '{"event":"booking_update","url":"https://e.com/\u0000"}' ],
    [ 'invalid UTF-8',       "{\"event\":\"booking_update\",\"url\":\"https://e.com/\xff\"}" ],
);
my @json = (
    [ 'missing event',             { url => $ok } ],
    [ 'unknown event',             { event => 'booking_created', url => $ok } ],
    [ 'event case',                { event => 'BOOKING_UPDATE', url => $ok } ],
    [ 'event not a string',        { event => 1, url => $ok } ],
    [ 'event null',                { event => undef, url => $ok } ],
    [ 'missing url',               { event => 'booking_update' } ],
    [ 'url null',                  { event => 'booking_update', url => undef } ],
    [ 'url not a string',          { event => 'booking_update', url => [ $ok ] } ],
    [ 'relative url',              { event => 'booking_update', url => '/hooks' } ],
    [ 'url without scheme',        { event => 'booking_update', url => 'e.com/hooks' } ],
    [ 'ftp url',                   { event => 'booking_update', url => 'ftp://e.com/x' } ],
    [ 'javascript url',            { event => 'booking_update', url => 'javascript:alert(1)' } ],
    [ 'url with a space',          { event => 'booking_update', url => 'https://e.com/a b' } ],
    [ 'url with CRLF',             { event => 'booking_update', url => "https://e.com/a\r\nX: y" } ],
    [ 'url over 2048',             { event => 'booking_update', url => 'https://e.com/' . ('a' x 2040) } ],
    [ 'url without host',          { event => 'booking_update', url => 'http:///x' } ],
    [ 'url bad port',              { event => 'booking_update', url => 'http://e.com:70000/' } ],
    [ 'url private literal',       { event => 'booking_update', url => 'http://10.0.0.1/x' } ],
    [ 'url metadata literal',      { event => 'booking_update', url => 'http://169.254.169.254/latest' } ],
    [ 'headers array',             { event => 'booking_update', url => $ok, headers => [ 'X: 1' ] } ],
    [ 'headers string',            { event => 'booking_update', url => $ok, headers => 'X: 1' } ],
    [ 'headers null',              { event => 'booking_update', url => $ok, headers => undef } ],
    [ 'header value number',       { event => 'booking_update', url => $ok, headers => { 'X-A' => 1 } } ],
    [ 'header value null',         { event => 'booking_update', url => $ok, headers => { 'X-A' => undef } } ],
    [ 'header value object',       { event => 'booking_update', url => $ok, headers => { 'X-A' => { a => 1 } } } ],
    [ 'header name with space',    { event => 'booking_update', url => $ok, headers => { 'Bad Name' => 'v' } } ],
    [ 'header name with colon',    { event => 'booking_update', url => $ok, headers => { 'X:Y' => 'v' } } ],
    [ 'empty header name',         { event => 'booking_update', url => $ok, headers => { '' => 'v' } } ],
    [ 'header CRLF injection',     { event => 'booking_update', url => $ok, headers => { 'X-A' => "x\r\nX-Injected: 1" } } ],
    [ 'header LF',                 { event => 'booking_update', url => $ok, headers => { 'X-A' => "x\ny" } } ],
    [ 'header CR',                 { event => 'booking_update', url => $ok, headers => { 'X-A' => "x\ry" } } ],
    (map { [ "forbidden header $_", { event => 'booking_update', url => $ok, headers => { $_ => 'v' } } ] }
         qw(Host host Content-Length content-length Content-Type CONTENT-TYPE Transfer-Encoding Connection connection)),
    [ 'retryOnError string',       { event => 'booking_update', url => $ok, retryOnError => 'true' } ],
    [ 'retryOnError number',       { event => 'booking_update', url => $ok, retryOnError => 1 } ],
    [ 'retryOnError null',         { event => 'booking_update', url => $ok, retryOnError => undef } ],
    [ 'useContactLanguage string', { event => 'booking_update', url => $ok, useContactLanguage => 'false' } ],
    [ 'useContactLanguage number', { event => 'booking_update', url => $ok, useContactLanguage => 0 } ],
    [ 'active string',             { event => 'booking_update', url => $ok, active => 'yes' } ],
    [ 'active null',               { event => 'booking_update', url => $ok, active => undef } ],
);

my $before = $count->();
for my $case (@raw) {
    my $r = api('POST', '/webhooks', token => $tok, body => $case->[1]);
    is($r->{code} . ' ' . ($r->{json}{error} // ''), '400 BAD_REQUEST', "raw: $case->[0]");
    ok(length($r->{json}{errorMessage} // ''), "raw: $case->[0] has a message");
}
for my $case (@json) {
    my $r = api('POST', '/webhooks', token => $tok, json => $case->[1]);
    is($r->{code} . ' ' . ($r->{json}{error} // ''), '400 BAD_REQUEST', $case->[0]);
    ok(length($r->{json}{errorMessage} // ''), "$case->[0] has a message");
}
is($count->(), $before, 'nothing was stored');

# secrets are never echoed
my $r = api('POST', '/webhooks', token => $tok, json => { event => 'booking_update', url => 'ftp://bob:hunter2pw@e.com/' });
unlike($r->{body}, qr/hunter2pw/, 'a refused url with credentials is not echoed');
$r = api('POST', '/webhooks', token => $tok, json => { event => 'booking_update', url => $ok, headers => { 'X-Key' => "topsecretvalue\n" } });
unlike($r->{body}, qr/topsecretvalue/, 'a refused header value is not echoed');
is($r->{headers}->header('X-Injected'), undef, 'no header injected into the answer');

# unknown fields are fine
$r = api('POST', '/webhooks', token => $tok, json => { event => 'booking_update', url => $ok, colour => 'blue' });
is($r->{code}, 200, 'unknown fields are ignored');

# oversize body: 413, nothing stored
$before = $count->();
$r = api('POST', '/webhooks', token => $tok, json => { event => 'booking_update', url => $ok, pad => 'x' x 70000 });
is($r->{code}, 413, 'body over 64 KiB: 413');
is($r->{json}{error}, 'BAD_REQUEST', 'OCTO error on 413');
is($count->(), $before, 'nothing stored on 413');

# PATCH: the same rules, and a refused PATCH changes nothing
my $id = api('POST', '/webhooks', token => $tok, json => { event => 'booking_update', url => $ok, headers => { 'X-A' => '1' } })->{json}{id};
for my $case (grep { $_->[0] !~ /^missing/ } @json) {
    my $r = api('PATCH', "/webhooks/$id", token => $tok, json => $case->[1]);
    is($r->{code}, 400, "PATCH: $case->[0]");
}
$r = api('PATCH', "/webhooks/$id", token => $tok, body => '[1]');
is($r->{code}, 400, 'PATCH: array body');
$r = api('PATCH', "/webhooks/$id", token => $tok, body => '');
is($r->{code}, 400, 'PATCH: empty body');
$r = api('GET', "/webhooks/$id", token => $tok);
is_deeply([ @{ $r->{json} }{qw(event url)}, $r->{json}{headers} ], [ 'booking_update', $ok, { 'X-A' => '1' } ],
          'refused PATCHes left the webhook unchanged');

done_testing();
