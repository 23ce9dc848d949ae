# Standard Webhooks signatures: a verifier written here checks them, secrets
# are shown once, and a rotation signs with both secrets for the grace period.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use lib 't/lib';
use OWHDelivery;
use Digest::SHA qw(hmac_sha256);
use MIME::Base64 qw(decode_base64 encode_base64);
use JSON::PP ();

# The receiver's side, as the Standard Webhooks libraries do it.
sub verify {
    my ($secret, $req) = @_;
    my ($id, $ts, $sig) = @{ $req->{headers} }{qw(webhook-id webhook-timestamp webhook-signature)};
    return 0 unless defined $id && defined $ts && defined $sig && $secret =~ /^whsec_(.+)$/;
    return 0 if abs(time - $ts) > 300;
    my $want = encode_base64(hmac_sha256("$id.$ts.$req->{body}", decode_base64($1)), '');
    return scalar grep { $_ eq "v1,$want" } split / /, $sig;
}

my $db = new_database();
my $h = start_httpd(conninfo => $db, directives => 'OctoWebhooksSecretGrace 3s');
my $sink = start_sink();
my $tok = token('res-s', ['octo:read.webhooks', 'octo:write.webhooks'], db => $db);
my $other = token('res-other', ['octo:read.webhooks', 'octo:write.webhooks'], db => $db);

# secret: true -> generated, shown once
my $r = api('POST', '/webhooks', base => $h->base, token => $tok, json => {
    event => 'product_update', url => $sink->url('/signed'), secret => JSON::PP::true });
is($r->{code}, 200, 'created with secret: true');
my $s1 = $r->{json}{secret};
like($s1, qr{^whsec_[A-Za-z0-9+/]{43}=$}, 'a whsec_ secret of 32 bytes is shown');
is($r->{json}{signed}, JSON::PP::true, 'signed: true');
my $id = $r->{json}{id};
my $got = api('GET', "/webhooks/$id", base => $h->base, token => $tok);
ok(!exists $got->{json}{secret} && $got->{body} !~ /whsec_/, 'never shown again (GET)');
is($got->{json}{signed}, JSON::PP::true, 'GET says signed');
unlike(api('GET', '/webhooks', base => $h->base, token => $tok)->{body}, qr/whsec_/, 'nor in the list');

# a secret of the client's own, and bad ones
my $mine = 'whsec_' . encode_base64('k' x 32, '');
$r = api('POST', '/webhooks', base => $h->base, token => $tok, json => {
    event => 'product_update', url => $sink->url('/mine'), secret => $mine });
is($r->{json}{secret}, $mine, "the client's own secret is taken");
for my $bad ('whsec_short', 'nope', 'whsec_' . encode_base64('k' x 10, ''), 42) {
    my $b = api('POST', '/webhooks', base => $h->base, token => $tok, json => {
        event => 'product_update', url => $sink->url('/bad'), secret => $bad });
    is($b->{code}, 400, "secret '$bad' refused");
    like($b->{json}{errorMessage} // '', qr/secret/, 'the message names secret');
    unlike($b->{body}, qr/\Q$bad\E/, 'and does not echo it') if length $bad > 4;
}
$r = api('POST', '/webhooks', base => $h->base, token => $tok, json => {
    event => 'product_update', url => $sink->url('/plain') });
is($r->{json}{signed}, JSON::PP::false, 'without secret: unsigned');

emit($db, 'product_update', { id => 'p-1' });
my $req = $sink->wait_for(path => '/signed')->[0];
ok(verify($s1, $req), 'the signature verifies with the secret');
like($req->{headers}{'webhook-id'}, qr/^msg_/, 'webhook-id');
like($req->{headers}{'webhook-timestamp'}, qr/^\d{10}$/, 'webhook-timestamp in Unix seconds');
is(scalar(split / /, $req->{headers}{'webhook-signature'}), 1, 'one signature outside a rotation');
ok(!verify('whsec_' . encode_base64('x' x 32, ''), $req), 'another secret does not verify');
{
    my %tampered = (%$req, body => $req->{body} . ' ');
    ok(!verify($s1, \%tampered), 'a changed body does not verify');
}
ok(verify($mine, $sink->wait_for(path => '/mine')->[0]), "the client's secret signs");
my $plain = $sink->wait_for(path => '/plain')->[0];
ok(!exists $plain->{headers}{'webhook-signature'}, 'unsigned webhook: no webhook-signature');
ok(exists $plain->{headers}{'webhook-id'} && exists $plain->{headers}{'webhook-timestamp'},
   'but webhook-id and webhook-timestamp');

# rotation: both sign during the grace period, then only the new one
$r = api('POST', "/webhooks/$id/secret", base => $h->base, token => $other);
is($r->{code}, 404, "another connection cannot rotate it");
$r = api('POST', "/webhooks/$id/secret", base => $h->base, token => $tok);
is($r->{code}, 200, 'rotated');
my $s2 = $r->{json}{secret};
like($s2, qr/^whsec_/, 'the new secret is shown');
isnt($s2, $s1, 'a different one');
my $until = $r->{json}{previousSecretValidUntil} // '';
like($until, qr/^\d{4}-\d\d-\d\dT/, 'the old one signs until a time');
emit($db, 'product_update', { id => 'p-2' });
$req = $sink->wait_for(path => '/signed', count => 2)->[1];
is(scalar(split / /, $req->{headers}{'webhook-signature'}), 2, 'two signatures during the rotation');
ok(verify($s2, $req), 'the new secret verifies');
ok(verify($s1, $req), 'the old secret still verifies');
# the grace period ends on the database's clock, which the dispatcher reads
ok(wait_until(sub { q_at($db, 'SELECT clock_timestamp() > $1::timestamptz', $until)->[0][0] eq 't' }, 10),
   "the grace period is over ($until)");
emit($db, 'product_update', { id => 'p-3' });
$req = $sink->wait_for(path => '/signed', count => 3)->[2];
ok(verify($s2, $req), 'after the grace period: the new secret verifies');
ok(!verify($s1, $req), 'the old one no longer does');

# a secret given to the rotation route; a bad one refused
$r = api('POST', "/webhooks/$id/secret", base => $h->base, token => $tok, json => { secret => $mine });
is($r->{json}{secret}, $mine, 'rotation to a given secret');
is(api('POST', "/webhooks/$id/secret", base => $h->base, token => $tok, json => { secret => 'whsec_x' })->{code}, 400,
   'a bad one refused');
my $ro = token('res-s', ['octo:read.webhooks'], db => $db);
is(api('POST', "/webhooks/$id/secret", base => $h->base, token => $ro)->{code}, 403, 'rotation needs the write ability');
done_testing();
