package OWHTest;
# Helpers for the API tests: tokens, requests, a look into the database,
# stopping and starting the test PostgreSQL and httpd. See bin/owh for the
# environment (OWH_TEST_CONNINFO, OWH_TEST_PGBIN, OWH_TEST_PGDATA, ...).
use strict;
use warnings;
use Exporter 'import';
use JSON::PP ();
use LWP::UserAgent ();
use HTTP::Request ();
use Apache::Test ();
use Apache::TestRequest ();
use File::Temp ();

our @EXPORT = qw(token api psql_query psql_at pg_stop pg_start server_restart json_encode);

my $JSON = JSON::PP->new->canonical->allow_nonref;

sub json_encode { $JSON->encode($_[0]) }

# psql with -v variables: values never become SQL text.
sub _psql { _psql_at($ENV{OWH_TEST_CONNINFO}, @_) }

# psql_at(conninfo, sql, params...) -> arrayref of rows; dies on error.
sub psql_at {
    my ($ok, $rows) = _psql_at(@_);
    die "psql failed: $_[1]\n" unless $ok;
    return $rows;
}

sub _psql_at {
    my ($conninfo, $sql, @params) = @_;
    my @vars;
    my $i = 0;
    for my $p (@params) {
        $i++;
        push @vars, '-v', "p$i=" . (defined $p ? $p : '');
        $sql =~ s/\$$i\b/:'p$i'/g;
    }
    # psql interpolates :'var' only in scripts, not in -c
    my $file = File::Temp->new(SUFFIX => '.sql');
    print $file "$sql;\n";
    close $file;
    open(my $fh, '-|', 'psql', '-X', '-q', '-A', '-t', '-F', "\x1f", '-v', 'ON_ERROR_STOP=1',
         @vars, '-d', $conninfo, '-f', "$file") or die "psql: $!";
    my @rows = map { chomp; [ split /\x1f/, $_, -1 ] } grep { length } <$fh>;
    close $fh;
    return ($? == 0, \@rows);
}

sub psql_query { psql_at($ENV{OWH_TEST_CONNINFO}, @_) }

# A fresh token of the connection with these abilities (the schema is made
# by the module when the test server starts; wait for it if needed).
sub token {
    my ($connection, @abilities) = @_;
    my $list = '{' . join(',', map { qq("$_") } @abilities) . '}';
    for (1 .. 50) {
        my ($ok, $rows) = _psql('SELECT octo_webhooks.create_token($1, $2::text[], $3)',
                                $connection, $list, 'test');
        return $rows->[0][0] if $ok && @$rows;
        select(undef, undef, undef, 0.2);
    }
    die "cannot create a token for $connection\n";
}

my $ua;

# api(METHOD, PATH, %opt) -> { code, json, body, headers, res }
sub api {
    my ($method, $path, %opt) = @_;
    $ua ||= LWP::UserAgent->new(timeout => 30, keep_alive => 0);
    my $prefix = exists $opt{prefix} ? $opt{prefix} : '/octo';
    my $url = 'http://' . Apache::TestRequest::hostport() . $prefix . $path;
    $url .= '?' . $opt{query} if defined $opt{query};
    my $req = HTTP::Request->new($method => $url);
    $req->header(Authorization => "Bearer $opt{token}") if defined $opt{token};
    $req->header(Authorization => $opt{auth}) if defined $opt{auth};
    $req->header('Octo-Capabilities' => $opt{caps}) if defined $opt{caps};
    if (exists $opt{json}) {
        $req->content($JSON->encode($opt{json}));
        $req->header('Content-Type' => $opt{ctype} || 'application/json');
    }
    elsif (defined $opt{body}) {
        $req->content($opt{body});
        $req->header('Content-Type' => $opt{ctype} || 'application/json');
    }
    if ($opt{headers}) { $req->header($_ => $opt{headers}{$_}) for keys %{ $opt{headers} } }
    $req->header('Content-Length' => length($req->content // ''));
    my $res = $ua->request($req);
    my $json = eval { $JSON->decode($res->decoded_content) };
    return { code => $res->code, json => $json, body => $res->decoded_content,
             headers => $res->headers, res => $res };
}

sub _pg_ctl {
    my ($what) = @_;
    my @opts = $what eq 'start' ? ('-o', $ENV{OWH_TEST_PGOPTS} // '', '-l', "$ENV{OWH_TEST_PGDATA}/../pg.log") : ();
    system("$ENV{OWH_TEST_PGBIN}/pg_ctl", '-D', $ENV{OWH_TEST_PGDATA}, '-m', 'fast', '-w', @opts,
           $what) == 0 or die "pg_ctl $what failed\n";
}

sub pg_stop  { _pg_ctl('stop') }
sub pg_start { _pg_ctl('start') }

# Stops and starts the Apache::Test httpd, then waits until it answers.
sub server_restart {
    my $server = Apache::Test::config()->server;
    $server->stop;
    $server->start or die "test server did not start again\n";
    for (1 .. 100) {
        my $r = eval { api('GET', '/webhooks') };
        return 1 if $r && $r->{code} == 401;
        select(undef, undef, undef, 0.1);
    }
    die "test server does not answer after restart\n";
}

1;
