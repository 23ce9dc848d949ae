# Issue 12 #10: `bin/owh run` in a terminal (a pty, as a user would): Ctrl-C
# stops httpd and PostgreSQL every time, without "unbound variable"; SIGTERM
# too; a run after a kill -9 of bin/owh alone (httpd and PostgreSQL left
# running) and after a kill -9 of everything (stale pid files) starts cleanly.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use lib 't/lib';
use OWHDelivery;
use IO::Pty;
use IO::Socket::INET;
use POSIX ();
use File::Temp qw(tempdir);
use Time::HiRes qw(time);

# bin/owh run starts the system apache2, which cannot load a module built
# with AddressSanitizer (OWH_ASAN=1 runs httpd through a preloading wrapper)
plan skip_all => 'bin/owh run cannot load an AddressSanitizer build of the module' if $ENV{OWH_ASAN};

my $state = tempdir(CLEANUP => 1);
my $port = free_port();

sub start_run {
    my $pty = IO::Pty->new;
    my $pid = fork // die;
    if (!$pid) {
        POSIX::setsid();
        $pty->make_slave_controlling_terminal;
        my $tty = $pty->slave;
        close $pty;
        open(STDIN, '<&', $tty); open(STDOUT, '>&', $tty); open(STDERR, '>&', $tty);
        exec('bash', "$ENV{OWH_SRCDIR}/bin/owh", 'run', '--port', $port, '--state', $state) or POSIX::_exit(127);
    }
    $pty->close_slave;
    return { pty => $pty, pid => $pid, out => '' };
}

# Reads the terminal until $re matches or $secs pass.
sub read_until {
    my ($run, $re, $secs) = @_;
    my $end = time + $secs;
    while (time < $end) {
        return 1 if $run->{out} =~ $re;
        my $rin = '';
        vec($rin, fileno($run->{pty}), 1) = 1;
        next unless select(my $rout = $rin, undef, undef, 0.2);
        my $n = sysread($run->{pty}, my $buf, 65536);
        last unless $n;
        $run->{out} .= $buf;
    }
    return $run->{out} =~ $re;
}

sub exited {
    my ($run, $secs) = @_;
    my $end = time + $secs;
    while (time < $end) {
        read_until($run, qr/(?!)/, 0.2);
        return 1 if waitpid($run->{pid}, POSIX::WNOHANG()) == $run->{pid};
    }
    return 0;
}

sub pidfile { open(my $fh, '<', $_[0]) or return; my $p = <$fh> // ''; chomp $p; return $p =~ /^(\d+)$/ ? $1 : undef }
sub alive {
    my ($pid) = @_;
    return 0 unless $pid && open(my $fh, '<', "/proc/$pid/stat");
    return (<$fh> // '') !~ /\) Z /;
}
sub answers { IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Timeout => 2) ? 1 : 0 }

sub running {
    my ($run, $what) = @_;
    ok(read_until($run, qr/mod_octo_webhooks is running/, 180), "$what: running") or diag($run->{out});
    my %p = (httpd => pidfile("$state/run/httpd.pid"), pg => pidfile("$state/pg/postmaster.pid"));
    ok(alive($p{httpd}) && alive($p{pg}), "$what: httpd ($p{httpd}) and PostgreSQL ($p{pg}) are up");
    ok(answers(), "$what: the port answers");
    return \%p;
}

sub all_stopped {
    my ($p, $what, $run) = @_;
    wait_until(sub { !alive($p->{httpd}) && !alive($p->{pg}) }, 15);
    ok(!alive($p->{httpd}), "$what: httpd stopped");
    ok(!alive($p->{pg}), "$what: PostgreSQL stopped")
        or diag(`ps -o pid,ppid,pgid,sid,stat,args -p $p->{pg}` . ($run ? $run->{out} : ''));
    ok(!answers(), "$what: the port is closed");
}

# 1. Ctrl-C
my $run = start_run();
my $p = running($run, 'first run');
print { $run->{pty} } "\x03";
ok(exited($run, 60), 'Ctrl-C: bin/owh run exits');
unlike($run->{out}, qr/unbound variable/, 'no "unbound variable"');
all_stopped($p, 'Ctrl-C', $run);

# 2. again, stopped with SIGTERM
$run = start_run();
$p = running($run, 'second run');
kill 'TERM', $run->{pid};
ok(exited($run, 60), 'SIGTERM: bin/owh run exits');
all_stopped($p, 'SIGTERM');

# 3. kill -9 of bin/owh alone: httpd and PostgreSQL are left running
$run = start_run();
$p = running($run, 'third run');
kill 'KILL', $run->{pid};
waitpid($run->{pid}, 0);
ok(alive($p->{httpd}) && alive($p->{pg}), 'after kill -9 of bin/owh, its httpd and PostgreSQL are left');
$run = start_run();
my $p4 = running($run, 'a run after that crash');
ok(!alive($p->{httpd}), "the crashed run's httpd is gone");
print { $run->{pty} } "\x03";
ok(exited($run, 60), 'Ctrl-C');
all_stopped($p4, 'after the crash, Ctrl-C', $run);

# 4. kill -9 of everything: stale pid files
$run = start_run();
$p = running($run, 'fifth run');
kill 'KILL', $run->{pid}, $p->{httpd}, $p->{pg};
waitpid($run->{pid}, 0);
ok(wait_until(sub { !alive($p->{httpd}) && !alive($p->{pg}) }, 10), 'kill -9: httpd and PostgreSQL are gone');
ok(-e "$state/run/httpd.pid" && -e "$state/pg/postmaster.pid", 'stale pid files are left');
$run = start_run();
$p = running($run, 'a run after kill -9 of everything');
print { $run->{pty} } "\x03";
ok(exited($run, 60), 'Ctrl-C');
unlike($run->{out}, qr/unbound variable/, 'no "unbound variable"');
all_stopped($p, 'last run', $run);
done_testing();
