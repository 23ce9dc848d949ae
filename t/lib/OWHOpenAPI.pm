package OWHOpenAPI;
# Validates every API answer the tests receive against openapi/openapi.json,
# so the document cannot drift from the module. OWHTest::api (the one
# place the tests send requests) calls check() with the path relative to the handler's
# Location; a mismatch is a failed test with the reasons.
#
# JSON::Validator 5.14 (Debian 12) validates OpenAPI 3.0 only, so the
# routing is done here (path template, method, status, content type,
# required headers) and each body is checked with its JSON Schema 2019-09
# validator, whose keywords the 3.1 document's schemas keep to.
use strict;
use warnings;
use JSON::PP ();
use JSON::Validator::Schema::Draft201909 ();
use Test::More ();

my ($DOC, %VALIDATOR);

sub document {
    return $DOC if $DOC;
    my $file = ($ENV{OWH_SRCDIR} // '.') . '/openapi/openapi.json';
    open(my $fh, '<', $file) or die "OWHOpenAPI: $file: $!\n";
    local $/;
    $DOC = JSON::PP->new->decode(<$fh>);
    return $DOC;
}

sub _deref {
    my ($node) = @_;
    while (ref $node eq 'HASH' && $node->{'$ref'}) {
        my $n = document();
        for my $seg (grep { length } split m{/}, substr($node->{'$ref'}, 2)) {
            $seg =~ s/~1/\//g; $seg =~ s/~0/~/g;
            $n = $n->{$seg};
        }
        $node = $n;
    }
    return $node;
}

# The document's template for a relative path ("/webhooks/123" ->
# "/webhooks/{id}"), or undef.
sub template_for {
    my ($path) = @_;
    $path =~ s/\?.*//s;
    $path =~ s{(?<=.)/$}{};
    for my $t (sort keys %{ document()->{paths} }) {
        my $re = join '', map { /^\{.+\}$/ ? '[^/]+' : quotemeta } split m{(/)}, $t;
        return $t if $path =~ m{^$re$};
    }
    return undef;
}

sub _schema_errors {
    my ($schema_node, $data, $where) = @_;
    my $key = JSON::PP->new->canonical->encode($schema_node);
    my $v = $VALIDATOR{$key} ||= JSON::Validator::Schema::Draft201909->new(
        { %$schema_node, components => document()->{components} });
    return map { "$where: $_" } $v->validate($data);
}

# The reasons a response does not match the document (empty: it matches).
sub errors {
    my ($method, $path, $res) = @_;
    # LWP's own answer when no server answered (a test that stopped it): not the module's
    return () if ($res->header('Client-Warning') // '') eq 'Internal response';
    # httpd's own access control (a Require in the configuration) answered
    # before the module ran: its HTML page is not the API's answer
    return () if $res->code == 403 && ($res->header('Content-Type') // '') =~ m{^text/html};
    my $doc = document();
    my $code = $res->code;
    my ($t, $op, $resp);
    if (!defined($t = template_for($path))) {
        return ("$method $path: $code for a path that is no route (only 404 is)") if $code != 404;
        $resp = _deref($doc->{components}{responses}{NotFound});
    }
    elsif (!($op = $doc->{paths}{$t}{lc $method})) {
        return ("$method $t: $code for a method the route does not take (only 405 is)") if $code != 405;
        $resp = _deref($doc->{components}{responses}{MethodNotAllowed});
    }
    else {
        $resp = _deref($op->{responses}{$code})
            or return ("$method $t: status $code is not documented");
    }
    my @err;
    my $where = "$method " . ($t // $path) . " $code";
    my $ctype = ($res->header('Content-Type') // '') =~ s/;.*//sr;
    # the documented headers are the module's; httpd's own pages (text/html) have none of them
    for my $h (sort keys %{ $resp->{headers} || {} }) {
        my $spec = _deref($resp->{headers}{$h});
        next if $ctype eq 'text/html';
        my $val = $res->header($h);
        if (!defined $val) { push @err, "$where: header $h missing" if $spec->{required}; next }
        push @err, _schema_errors($spec->{schema}, $val, "$where header $h") if $spec->{schema};
    }
    if (!$resp->{content}) {
        push @err, "$where: a body where none is documented" if length($res->content // '');
        return @err;
    }
    my $media = $resp->{content}{$ctype}
        or return (@err, "$where: Content-Type '$ctype' is not documented");
    return @err if $ctype ne 'application/json';
    my $data = eval { JSON::PP->new->allow_nonref->decode($res->decoded_content // '') };
    return (@err, "$where: the body is not JSON") if $@;
    push @err, _schema_errors($media->{schema}, $data, $where) if $media->{schema};
    return @err;
}

# A failed test (with the reasons) when the response does not match.
sub check {
    my @err = errors(@_);
    return 1 unless @err;
    my $tb = Test::More->builder;
    $tb->ok(0, "the answer to $_[0] $_[1] matches openapi/openapi.json");
    $tb->diag($_) for @err;
    return 0;
}

1;
