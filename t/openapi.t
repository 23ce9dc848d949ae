# The OpenAPI document: served unauthenticated at {Location}/openapi.json,
# the same as openapi/openapi.json, a valid OpenAPI 3.1 document, and every
# route and method of the handler's route table documented (the API tests
# validate each answer against it: t/lib/OWHOpenAPI.pm).
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use lib 't/lib';
use OWHTest;
use OWHOpenAPI;
use JSON::PP ();

plan tests => 12;

my $doc = OWHOpenAPI::document();
my $r = api('GET', '/openapi.json');
is($r->{code}, 200, 'GET /octo/openapi.json without a token: 200');
is_deeply($r->{json}, $doc, 'the served document is openapi/openapi.json');
is($r->{headers}->header('Content-Type'), 'application/json', 'application/json');
is(api('GET', '/openapi.json', prefix => '/alt/prefix')->{code}, 200, 'under every Location');
my $p = api('POST', '/openapi.json');
is($p->{code}, 405, 'POST: 405');
is(api('GET', '/webhooks/openapi.json')->{code}, 401, 'a route first: /webhooks/openapi.json is a webhook id (401 without a token)');
is($doc->{openapi}, '3.1.0', 'OpenAPI 3.1');

# The route table in the source against the document's paths and methods.
open(my $fh, '<', "$ENV{OWH_SRCDIR}/src/owh_handler.c") or die $!;
my $src = do { local $/; <$fh> };
my ($table) = $src =~ /static const owh_route_t routes\[\] = \{(.*?)\n\};/s;
my (%routes, $cur);
for my $line (split /\n/, $table) {
    if ($line =~ /\{\s*"([^"]+)",\s*"([^"]+)"/) { $cur = "/$1"; $cur =~ s/\{sub\}/{deliveryId}/; $routes{$cur} = [] }
    push @{ $routes{$cur} }, lc $1 while $cur && $line =~ /M_(GET|POST|PATCH|DELETE|PUT)\b/g;
}
ok(keys(%routes) >= 9, 'the route table was read (' . scalar(keys %routes) . ' routes)');
my @missing;
for my $route (sort keys %routes) {
    for my $m (@{ $routes{$route} }) { push @missing, "$m $route" unless $doc->{paths}{$route}{$m} }
}
is_deeply(\@missing, [], 'every route and method of the handler is documented');
my @extra;
for my $path (sort keys %{ $doc->{paths} }) {
    next if $path eq '/openapi.json';
    for my $m (grep { /^(get|post|patch|delete|put)$/ } keys %{ $doc->{paths}{$path} }) {
        push @extra, "$m $path" unless grep { $_ eq $m } @{ $routes{$path} || [] };
    }
}
is_deeply(\@extra, [], 'nothing documented that the handler does not route');

# Every operation names its abilities and documents the auth failures.
my @bad;
for my $path (sort keys %{ $doc->{paths} }) {
    next if $path eq '/openapi.json';
    for my $m (keys %{ $doc->{paths}{$path} }) {
        my $op = $doc->{paths}{$path}{$m};
        push @bad, "$m $path" unless @{ $op->{security} || [] } && $op->{responses}{401} && $op->{responses}{403};
    }
}
is_deeply(\@bad, [], 'every operation has its abilities, 401 and 403');

# The validator itself rejects a wrong answer (so the hook in the helpers can fail).
require HTTP::Response;
my $wrong = HTTP::Response->new(200, 'OK', [ 'Content-Type' => 'application/json', 'Cache-Control' => 'no-store' ],
                                '[{"id": 1}]');
ok(scalar(OWHOpenAPI::errors('GET', '/webhooks', $wrong)) > 0, 'a body that does not match is reported');
