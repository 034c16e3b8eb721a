#!/usr/bin/env bash
# nook.yaml without a guest OS: nook init, the upward search, errors with
# their line:column and exit codes, commands without NAME resolving to the
# file's VM, start --plan, and a cluster of groups started for real on
# blank disks (QEMUs that boot nothing, as tests/cli/test-cluster.sh
# does): its node names, addresses, per-group settings, growing, stop and
# delete without NAME. A grouped cluster is not booted into a guest here.
NOOK=$1
. "$(dirname "$0")/lib.sh"
cleanup() {
	for c in dev old dev-cp-1 dev-worker-1 dev-worker-2 dev-worker-3 myproj clone lw; do
		"$NOOK" local delete "$c" --force >/dev/null 2>&1
	done
	rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK" || exit 1
qemu_args() { tr '\0' '\n' < /proc/"$(cat "$NOOK_HOME/run/$1/qemu.pid")"/cmdline; }
# in DIR: run nook with the rest
in_dir() { local d=$1; shift; (cd "$d" && exec "$NOOK" "$@"); }
# the same, ended after 20 s (exit 124): for what must not wait
tin_dir() { local d=$1; shift; (cd "$d" && exec timeout 20 "$NOOK" "$@"); }

# --- without a nook.yaml: as before, the default name --------------------
mkdir -p plain
expect_rc "status --json without nook.yaml" 1 in_dir plain local status --json
contains "  names the default VM" "$OUT" "'default'"

# --- nook init -------------------------------------------------------------
mkdir -p myproj/a/b
expect_rc "nook init" 0 in_dir myproj init
check "  wrote nook.yaml" test -f myproj/nook.yaml
contains "  says where" "$OUT" "myproj/nook.yaml"
sum=$(sha256sum myproj/nook.yaml)
expect_rc "a second nook init is refused" 1 in_dir myproj init
contains "  saying what to do" "$ERR" "exists already"
check "  and the file is untouched" test "$(sha256sum myproj/nook.yaml)" = "$sum"
check "  no temporary file is left" test "$(ls -A myproj | wc -l)" = 2
expect_rc "init takes no arguments" 2 in_dir myproj init x
# a directory's name that is no VM name still names the VM after it
mkdir -p My_App.v2 2024-site ___
expect_rc "init in My_App.v2" 0 in_dir My_App.v2 init
check "  names VM my-app-v2" grep -qx 'name: my-app-v2' My_App.v2/nook.yaml
expect_rc "init in 2024-site" 0 in_dir 2024-site init
check "  names VM site" grep -qx 'name: site' 2024-site/nook.yaml
expect_rc "init in ___" 0 in_dir ___ init
check "  names VM dev (no letter)" grep -qx 'name: dev' ___/nook.yaml
rm -rf My_App.v2 2024-site ___
check "  the file's mode follows the umask" test "$(stat -c %a myproj/nook.yaml)" = "$(printf '%o' $((0666 & ~$(umask))))"
expect_rc "init under umask 077" 0 sh -c 'cd "$1" && umask 077 && exec "$2" init' _ myproj/a "$NOOK"
check "  is 0600" test "$(stat -c %a myproj/a/nook.yaml)" = 600
contains "  says it nests in the parent's tree" "$OUT" "inside the tree of $WORK/myproj/nook.yaml"
rm myproj/a/nook.yaml
expect_rc "the starter parses: start --plan" 0 in_dir myproj local start --plan --json
check "  its VM is named after the directory" test "$(echo "$OUT" | json 'd["name"]')" = myproj
check "  one VM, not a cluster" test "$(echo "$OUT" | json 'd["cluster"]')" = False

# --- the upward search and commands without NAME -------------------------
expect_rc "status --json two directories below" 1 in_dir myproj/a/b local status --json
contains "  names the file's VM" "$(echo "$OUT" | json 'd["error"]')" "'myproj'"
expect_rc "shell without NAME" 1 in_dir myproj/a/b shell -- true
contains "  names the file's VM" "$ERR" "myproj"
expect_rc "console without NAME" 1 in_dir myproj/a/b console
contains "  names the file's VM" "$ERR" "myproj"
expect_rc "stop without NAME" 1 in_dir myproj/a/b local stop
contains "  names the file's VM" "$ERR" "myproj"
expect_rc "snapshot list without NAME" 1 in_dir myproj/a/b local snapshot list --json
contains "  names the file's VM" "$(echo "$OUT" | json 'd["error"]')" "'myproj'"
expect_rc "a NAME given wins over the file" 1 in_dir myproj/a/b local status other --json
contains "  names it" "$OUT" "'other'"

# --- errors: PATH:LINE:COLUMN, exit 2, before anything starts ------------
printf 'name: myproj\ncpus: 2\nmemroy: 1G\n' > myproj/nook.yaml
expect_rc "an unknown key is a usage error" 2 in_dir myproj local start
contains "  at its line and column, with a guess" "$ERR" "nook.yaml:3:1: unknown key 'memroy' in the top level: did you mean memory?"
check "  and nothing was made" test ! -e "$NOOK_HOME/vms/myproj"
expect_rc "from below, the path is as the user finds it" 2 in_dir myproj/a/b local status
contains "  ../../nook.yaml" "$ERR" "nook: ../../nook.yaml:3:1: unknown key"
expect_rc "shell with a bad file" 2 in_dir myproj/a shell -- true
expect_rc "sync with a bad file" 2 in_dir myproj/a sync
expect_rc "snapshot list with a bad file" 2 in_dir myproj/a local snapshot list
expect_rc "a NAME given does not read the file" 1 in_dir myproj/a local status other
printf 'name: myproj\nuser-data: ci/nothere.yaml\n' > myproj/nook.yaml
expect_rc "a missing user-data file" 2 in_dir myproj local start
contains "  named with where" "$ERR" "nook.yaml:2:12: user-data: cannot read ci/nothere.yaml"
printf 'name: myproj\nnodes:\n  - group: w\n    count: -2\n' > myproj/nook.yaml
expect_rc "a negative count" 2 in_dir myproj local start --plan
contains "  named with where" "$ERR" "nook.yaml:4:12: bad count '-2'"
printf 'name: myproj\nmemory: lots\n' > myproj/nook.yaml
expect_rc "a bad size" 2 in_dir myproj local start --plan
contains "  named with where" "$ERR" "nook.yaml:2:9: bad memory 'lots'"
printf 'name: myproj\ncpus: [1]\n' > myproj/nook.yaml
expect_rc "a wrong type" 2 in_dir myproj local start --plan
contains "  named with where" "$ERR" "nook.yaml:2:7: cpus: expected a whole number, not a list"
printf 'name: myproj\nnodes:\n  - group: w\n  - group: w\n' > myproj/nook.yaml
expect_rc "a group twice" 2 in_dir myproj local start --plan
contains "  named with where" "$ERR" "nook.yaml:4:12: duplicate group 'w' (first at line 3)"
printf 'name: My_Proj\n' > myproj/nook.yaml
expect_rc "a name that is no VM name" 2 in_dir myproj local start --plan
contains "  named with where" "$ERR" "nook.yaml:1:7: VM name"

# --- a cluster of groups --------------------------------------------------
mkdir -p dev/ci
qemu-img create -q -f raw dev/blank.img 64M
printf '#cloud-config\n{}\n' > dev/ci/common.yaml
printf '#cloud-config\nruncmd: [[echo, cp]]\nwrite-files: []\n' > dev/ci/cp.yaml
cat > dev/nook.yaml <<'EOF'
name: dev
image: blank.img            # a path: from this file's directory
cpus: 1
memory: 256M
accel: tcg
user-data: ci/common.yaml
subnet: 10.79.0.0/24
nodes:
  - group: cp
    count: 1
    memory: 384M
    user-data: ci/cp.yaml
  - group: worker
    count: 2
EOF
expect_rc "--nodes cannot change a file's groups" 2 in_dir dev local start --nodes 5 --plan
expect_rc "NAME that is the file's: the file's cluster" 0 in_dir dev local start dev --plan --json
check "  its groups' nodes, not a plain VM" test "$(echo "$OUT" | json '",".join(n["name"] for n in d["nodes"])')" = "dev-cp-1,dev-worker-1,dev-worker-2"
expect_rc "  --nodes with its NAME is refused too" 2 in_dir dev local start dev --nodes 4 --plan
expect_rc "another NAME in the tree: not the file's" 0 in_dir dev local start solo --plan --json --image blank.img
check "  a plain VM" test "$(echo "$OUT" | json 'd["cluster"]')" = False
# the merged options are checked as a start checks them
expect_rc "a fixed --port on every node is refused by --plan" 1 in_dir dev local start --plan --port 8080:80
contains "  naming two nodes" "$ERR" "host port 8080 would be forwarded to both dev-cp-1 and dev-worker-1"
expect_rc "start --plan" 0 in_dir dev local start --plan --json
plan=$OUT
check "  warns once of the cp group's typo'd key" test "$(printf '%s\n' "$ERR" | grep -c "ci/cp.yaml:3:1: cloud-init knows no key 'write-files' and skips it: did you mean write_files?")" = 1
check "  and of nothing else" test "$(printf '%s\n' "$ERR" | grep -c warning)" = 1
check "  three nodes NAME-GROUP-I in order" test "$(echo "$plan" | json '",".join(n["name"] for n in d["nodes"])')" = "dev-cp-1,dev-worker-1,dev-worker-2"
check "  addresses in list order" test "$(echo "$plan" | json '",".join(n["address"] for n in d["nodes"])')" = "10.79.0.1,10.79.0.2,10.79.0.3"
check "  the cp group's own memory" test "$(echo "$plan" | json 'd["nodes"][0]["memory_mib"]')" = 384
check "  the workers' from the top level" test "$(echo "$plan" | json 'd["nodes"][1]["memory_mib"]')" = 256
contains "  the cp group's own user-data" "$(echo "$plan" | json 'd["nodes"][0]["user_data"]')" "dev/ci/cp.yaml"
contains "  the workers' the top level's" "$(echo "$plan" | json 'd["nodes"][2]["user_data"]')" "dev/ci/common.yaml"
expect_rc "a command-line option overrides every group" 0 in_dir dev local start --plan --json --memory 512M
check "  512M on cp too" test "$(echo "$OUT" | json 'd["nodes"][0]["memory_mib"]')" = 512
check "--plan made nothing" test ! -e "$NOOK_HOME/clusters/dev.json" -a ! -e "$NOOK_HOME/vms/dev-cp-1"

expect_rc "start the cluster (blank disks, --no-wait)" 0 in_dir dev/ci local start --no-wait
contains "  the plan first, on stderr" "$ERR" "cluster dev (new): 3 nodes on 10.79.0.0/24"
contains "  a line per node" "$ERR" "dev-worker-2"
for n in dev-cp-1 dev-worker-1 dev-worker-2; do
	check "  $n runs" test -s "$NOOK_HOME/run/$n/qemu.pid"
done
check "  cp's QEMU has its group's memory" sh -c 'echo "$1" | grep -A1 -x -- -m | tail -1 | grep -qx 384M' _ "$(qemu_args dev-cp-1)"
check "  a worker's the top level's" sh -c 'echo "$1" | grep -A1 -x -- -m | tail -1 | grep -qx 256M' _ "$(qemu_args dev-worker-1)"
check "  cp's seed carries cp.yaml" sh -c '"$1" cidata show "$2" --file user-data | grep -q "echo, cp"' _ "$NOOK" "$NOOK_HOME/vms/dev-cp-1/cidata.iso"
expect_rc "status without NAME: every node" 0 in_dir dev local status --json
st=$OUT
check "  three nodes" test "$(echo "$st" | json 'len(d)')" = 3
check "  with the planned addresses" test "$(echo "$st" | json '",".join(n["address"] for n in d)')" = "10.79.0.1,10.79.0.2,10.79.0.3"
check "the record lists the members" test "$(json '",".join(m["name"] for m in d["members"])' < "$NOOK_HOME/clusters/dev.json")" = "dev-cp-1,dev-worker-1,dev-worker-2"
# a middle node deleted leaves its place: its name is the cluster's
expect_rc "delete a middle node" 0 "$NOOK" local delete dev-worker-1 --force
expect_rc "a plain VM with its name is refused" 1 "$NOOK" local start dev-worker-1 --image dev/blank.img --no-wait --memory 256M --accel tcg
contains "  naming the cluster" "$ERR" "node name of cluster dev"
expect_rc "a plain VM named dev-1 is refused too" 1 "$NOOK" local start dev-1 --image dev/blank.img --no-wait --memory 256M --accel tcg
contains "  pointing at the groups, not --nodes" "$ERR" "dev-1 is a node name of cluster dev: its nook.yaml's groups make its nodes"
expect_rc "the cluster's start makes it again" 0 in_dir dev local start --no-wait
check "  at its old address" test "$("$NOOK" local status dev-worker-1 --json | json 'd["address"]')" = 10.79.0.2
expect_rc "ssh-config without NAME: a stanza per node" 0 in_dir dev ssh-config
check "  three" test "$(echo "$OUT" | grep -c '^Host nook-dev-')" = 3
# the project's image deleted under its VMs: said, not in QEMU's words
"$NOOK" local stop dev-worker-2 --force >/dev/null
mv dev/blank.img dev/blank.img.away
expect_rc "a node's start with its project's image gone" 1 "$NOOK" local start dev-worker-2 --no-wait
contains "  says it is gone from the project" "$ERR" "dev/blank.img, which this VM is made from, is gone from its project"
mv dev/blank.img.away dev/blank.img
expect_rc "  starts once it is back" 0 "$NOOK" local start dev-worker-2 --no-wait
# another project whose directory is named dev too: init warns
mkdir -p other/dev
expect_rc "init in another directory named dev" 0 in_dir other/dev init
contains "  warns that cluster dev exists" "$ERR" "named dev exists already"
mkdir -p other/dev-1
expect_rc "init in a directory named as one of dev's nodes" 0 in_dir other/dev-1 init
contains "  warns that its start would be refused" "$ERR" "so this file's start would be refused"
rm -rf other

# growing: a new worker takes the next address; no node moves
sed -i 's/count: 2/count: 3/' dev/nook.yaml
expect_rc "plan of the grown cluster" 0 in_dir dev local start --plan --json
check "  dev-worker-3 takes .4" test "$(echo "$OUT" | json '[n["address"] for n in d["nodes"] if n["name"]=="dev-worker-3"][0]')" = 10.79.0.4
check "  only it is new" test "$(echo "$OUT" | json '",".join(n["name"] for n in d["nodes"] if n["new"])')" = dev-worker-3
expect_rc "grow" 0 in_dir dev local start --no-wait
check "  dev-worker-3 runs" test -s "$NOOK_HOME/run/dev-worker-3/qemu.pid"
# a node that fails before it is made is named, with its reason; the
# others run
python3 -c 'import socket,time; s=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(); print(s.getsockname()[1], flush=True); time.sleep(60)' > held.port &
holder=$!
for _ in $(seq 100); do [ -s held.port ] && break; sleep 0.1; done
hp=$(cat held.port)
cp dev/nook.yaml nook.yaml.before
printf '  - group: db\n    ports: ["%s:5432"]\n' "$hp" >> dev/nook.yaml
expect_rc "a new node whose host port is taken" 1 in_dir dev local start --no-wait
check "  is named in the table, with its reason" sh -c 'echo "$1" | grep -q "^  dev-db-1 *not made *host port 127.0.0.1:$2/tcp is already in use"' _ "$OUT" "$hp"
check "  beside the nodes that run" sh -c 'echo "$1" | grep -q "^  dev-worker-3 *running"' _ "$OUT"
expect_rc "  and with --json" 1 in_dir dev local start --no-wait --json
check "  its state null, its error the reason" test "$(echo "$OUT" | json '[(n["state"], "already in use" in n["error"]) for n in d["nodes"] if n["name"] == "dev-db-1"]')" = "[(None, True)]"
check "  the others running, without an error" test "$(echo "$OUT" | json '{(n["state"], "error" in n) for n in d["nodes"] if n["name"] != "dev-db-1"}')" = "{('running', False)}"
check "  not in the record" sh -c '! grep -q dev-db-1 "$1"' _ "$NOOK_HOME/clusters/dev.json"
kill "$holder"
wait "$holder" 2>/dev/null
mv nook.yaml.before dev/nook.yaml
# dropping a group's node is refused, pointing at delete
sed -i 's/count: 3/count: 1/' dev/nook.yaml
expect_rc "fewer nodes than the cluster has is refused" 1 in_dir dev local start --no-wait
contains "  pointing at delete" "$ERR" "nook local delete dev-worker-3"
sed -i 's/count: 1$/count: 3/' dev/nook.yaml
# deleting the last node shrinks the record; it comes back where it was
expect_rc "delete the last node" 0 "$NOOK" local delete dev-worker-3 --force
check "  the record is one smaller" test "$(json 'len(d["members"])' < "$NOOK_HOME/clusters/dev.json")" = 3
# a group's next node name is the cluster's, as NAME-N is a plain one's
expect_rc "a plain VM with a group's next node name is refused" 1 "$NOOK" local start dev-worker-3 --image dev/blank.img --no-wait --memory 256M --accel tcg
contains "  naming the cluster" "$ERR" "dev-worker-3 is a node name of cluster dev"
contains "  and what makes its nodes" "$ERR" "its nook.yaml's groups make its nodes"
expect_rc "  and one of a group the cluster lacks is not" 0 "$NOOK" local start dev-db-1 --image dev/blank.img --no-wait --memory 256M --accel tcg
expect_rc "  (deleted)" 0 "$NOOK" local delete dev-db-1 --force

expect_rc "stop without NAME: every node" 0 in_dir dev local stop --force
check "  no QEMU left" test -z "$(ls "$NOOK_HOME"/run/dev-*/qemu.pid 2>/dev/null)"
expect_rc "shell without NAME takes the first node" 1 in_dir dev shell -- true
contains "  said on stderr" "$ERR" "using its first node dev-cp-1"
expect_rc "delete without NAME" 0 in_dir dev local delete
check "  every node gone" test -z "$(ls -d "$NOOK_HOME"/vms/dev-* 2>/dev/null)"
check "  the record gone" test ! -e "$NOOK_HOME/clusters/dev.json"

# a node name another cluster's record claims: dev-cp-1 of cluster dev-cp
printf '{"name": "dev-cp", "subnet": "10.67.0.0/24", "nodes": 1}\n' > "$NOOK_HOME/clusters/dev-cp.json"
expect_rc "a node another cluster claims is refused" 1 in_dir dev local start --plan
contains "  naming both" "$ERR" "dev-cp-1 is a node name of cluster dev-cp already"
rm -f "$NOOK_HOME/clusters/dev-cp.json"
# --nodes on a cluster named by groups
printf '{"name": "grp", "subnet": "10.68.0.0/24", "nodes": 2, "members": [{"name": "grp-a-1", "node": 1}, {"name": "grp-b-1", "node": 2}]}\n' > "$NOOK_HOME/clusters/grp.json"
expect_rc "--nodes on a cluster of groups" 1 "$NOOK" local start grp --nodes 4 --plan
contains "  says its nodes are named by groups" "$ERR" "cluster grp's nodes are named by groups"
# a nook.yaml that names none of a cluster's nodes (its group renamed, or
# groups for a cluster made with nodes: N) was told to drop the last node,
# or not to use --nodes: a node keeps the name it was made with
mkdir -p rn
printf 'name: grp\nnodes:\n  - group: c\n    count: 2\n' > rn/nook.yaml
expect_rc "a nook.yaml whose group is renamed" 1 in_dir rn local start --plan
contains "  says the start names none of the nodes" "$ERR" "cluster grp's nodes are grp-a-1 ..., and this start names none of them (grp-c-1 ...)"
contains "  and the way on" "$ERR" "Give the nook.yaml its groups as they were, or 'nook local delete grp'"
printf 'name: grp\nnodes: 2\n' > rn/nook.yaml
expect_rc "  nodes: N for it" 1 in_dir rn local start --plan
contains "  says its groups say how many" "$ERR" "its nook.yaml's groups say how many; edit them, not a number of nodes"
printf '{"name": "grp", "subnet": "10.68.0.0/24", "nodes": 2}\n' > "$NOOK_HOME/clusters/grp.json"
printf 'name: grp\nnodes:\n  - group: c\n    count: 2\n' > rn/nook.yaml
expect_rc "  groups for a cluster made with nodes: 2" 1 in_dir rn local start --plan
contains "  says so" "$ERR" "cluster grp's nodes are grp-1 ..., and this start names none of them (grp-c-1 ...)"
contains "  and the way on" "$ERR" "Say 'nodes: 2' in the nook.yaml, or 'nook local delete grp'"
check "  no word of a node deleted from its middle" sh -c '! printf "%s" "$1" | grep -q "from its middle"' _ "$ERR"
rm -rf rn
rm -f "$NOOK_HOME/clusters/grp.json"

# a record written before groups (no "members") still loads
mkdir -p "$NOOK_HOME/clusters"
printf '{"name": "old", "subnet": "10.66.0.0/24", "nodes": 2}\n' > "$NOOK_HOME/clusters/old.json"
expect_rc "an old record's plan" 0 "$NOOK" local start old --plan --json
check "  is NAME-1..NAME-N" test "$(echo "$OUT" | json '",".join(n["name"]+"="+n["address"] for n in d["nodes"])')" = "old-1=10.66.0.1,old-2=10.66.0.2"
rm -f "$NOOK_HOME/clusters/old.json"

# --- what the review found ---------------------------------------------------
# another user's nook.yaml (git's CVE-2022-24765): refused, naming it
if [ "$(id -u)" = 0 ]; then
	mkdir -p trust/sub
	printf 'name: victimvm\nports: ["2222:22"]\nsync:\n  - src: sub\n' > trust/nook.yaml
	chown -R nobody trust
	expect_rc "another user's nook.yaml is refused" 1 in_dir trust/sub local start --plan --json
	contains "  naming the file" "$ERR" "$WORK/trust/nook.yaml: not used"
	contains "  and why" "$ERR" "is owned by nobody"
	check "  nothing planned" sh -c '! printf %s "$1" | grep -q victimvm' _ "$OUT"
	expect_rc "  a NAME given still works" 1 in_dir trust/sub local status other
	expect_rc "  a start of NAME goes on without it, as it says" 0 in_dir trust/sub local start other --plan
	contains "  saying so" "$ERR" "starting VM other without the project file"
	chown -R root trust
	expect_rc "root's is used" 0 in_dir trust/sub local start --plan --json
	contains "  saying which file, as it is above" "$ERR" "using $WORK/trust/nook.yaml (../nook.yaml)"
	rm -rf trust
	# a symlink of yours to another user's file: the file read is
	# theirs (checked on the file opened, the one that is read)
	mkdir -p trust
	printf 'name: victimvm\n' > trust/real.yaml
	chown nobody trust/real.yaml
	ln -s real.yaml trust/nook.yaml
	expect_rc "a nook.yaml linking to another user's file is refused" 1 in_dir trust local start --plan --json
	contains "  saying whose the file it links to is" "$ERR" "$WORK/trust/nook.yaml: not used: the file it links to is owned by nobody"
	check "  nothing planned" sh -c '! printf %s "$1" | grep -q victimvm' _ "$OUT"
	rm -rf trust
fi
# a nook.yaml of yours that anyone may change (mode 0666): refused too,
# saying the mode and what to do; o-w, and it is used
mkdir -p open
printf 'name: openvm\n' > open/nook.yaml
chmod 0666 open/nook.yaml
expect_rc "a nook.yaml anyone may write is refused" 1 in_dir open local start --plan --json
contains "  naming the file and its mode" "$ERR" "$WORK/open/nook.yaml: not used: it has mode 0666"
contains "  and what to do" "$ERR" "chmod o-w it"
check "  nothing planned" sh -c '! printf %s "$1" | grep -q openvm' _ "$OUT"
mv open/nook.yaml open/real.yaml
ln -s real.yaml open/nook.yaml
expect_rc "  through a symlink" 1 in_dir open local start --plan --json
contains "  names the file it links to" "$ERR" "$WORK/open/nook.yaml: not used: the file it links to ($WORK/open/real.yaml) has mode 0666"
rm open/nook.yaml
mv open/real.yaml open/nook.yaml
chmod 0664 open/nook.yaml
expect_rc "  its group may write it: used" 0 in_dir open local start --plan --json
contains "  the file's VM" "$OUT" '"name": "openvm"'
rm -rf open
# a project you did not write (a repository cloned) cannot name your
# other files, by a path or a symlink: refused by where it leads, before
# anything starts (exit 2), saying what to do instead
mkdir -p clone/ci home/.ssh
printf 'secret\n' > home/.ssh/id_test
ln -s "$WORK/home/.ssh" clone/ci/keys
printf 'name: clone\nsync:\n  - src: ci/keys\n' > clone/nook.yaml
expect_rc "a sync src that leads out of the project (a symlink)" 2 in_dir clone sync
contains "  says where it leads" "$ERR" "nook.yaml:3:10: src: ci/keys leads outside this project ($WORK/clone)"
contains "  and what to do instead" "$ERR" "give it to 'nook sync SRC DEST'"
mkdir -p home/.kube
printf 'apiVersion: v1\nkind: Config\n' > home/.kube/config
printf 'name: clone\nnetwork-config: ../home/.kube/config\n' > clone/nook.yaml
expect_rc "a network-config above the project (any YAML mapping)" 2 in_dir clone local start --plan
contains "  is refused, pointing at the option" "$ERR" "network-config: ../home/.kube/config leads outside this project"
contains "  that takes it" "$ERR" "give it as --network-config"
printf 'name: clone\nimage: %s\n' "$WORK/dev/blank.img" > clone/nook.yaml
expect_rc "an image path outside" 2 in_dir clone local start --no-wait --memory 256M --accel tcg
contains "  points at importing it" "$ERR" "nook images import PATH --name NAME"
check "  and nothing was made" test ! -e "$NOOK_HOME/vms/clone"
printf 'name: clone\nports: ["0.0.0.0:0:80"]\n' > clone/nook.yaml
expect_rc "nor open a VM to the network" 2 in_dir clone local start --plan
contains "  saying so" "$ERR" "nook.yaml:2:9: ports: 0.0.0.0:0:80 forwards from 0.0.0.0: a project file forwards only from loopback"
cp dev/blank.img clone/blank.img
printf 'name: clone\nimage: blank.img\nsync:\n  - src: ci\n' > clone/nook.yaml
expect_rc "what is inside it is taken" 0 in_dir clone local start --plan --json
rm -rf clone home
# sync --all --json reports one copy, but a project file's rules are
# copies one after another: refused (exit 2), before anything runs
mkdir -p rules/a rules/b
printf 'name: rules\nsync:\n  - src: a\n  - src: b\n' > rules/nook.yaml
expect_rc "sync --all --json of two sync rules: a usage error" 2 in_dir rules sync --all --json
contains "  says why and what to give" "$ERR" "--json reports one SRC; nook.yaml has 2 sync rules: give SRC [DEST]"
rm -rf rules
# not a regular file: said, never waited on (a FIFO), exit 1
mkdir -p odd/sub
printf 'name: parent\n' > odd/nook.yaml
ln -s missing.yaml odd/sub/nook.yaml
expect_rc "a dangling symlink nook.yaml" 1 in_dir odd/sub local start --plan
contains "  says so" "$ERR" "nook.yaml is a symlink to missing.yaml, which does not exist"
expect_rc "  and init does not write through it" 1 in_dir odd/sub init
contains "  saying it is there" "$ERR" "exists already (a symlink)"
rm odd/sub/nook.yaml
mkfifo odd/sub/nook.yaml
expect_rc "a FIFO nook.yaml: refused, not waited on" 1 tin_dir odd/sub local start --plan
expect_rc "  with --json" 1 tin_dir odd/sub local start --plan --json
check "  the error is JSON too" test "$(echo "$OUT" | python3 -c 'import json,sys; print("FIFO" in json.load(sys.stdin)["error"])')" = True
rm odd/sub/nook.yaml
mkdir odd/sub/nook.yaml
expect_rc "a directory named nook.yaml" 1 in_dir odd/sub local start --plan
contains "  says what it is" "$ERR" "it is a directory, not a file"
rmdir odd/sub/nook.yaml
mkfifo odd/fifo
printf 'name: odd\nuser-data: fifo\n' > odd/nook.yaml
expect_rc "a FIFO as user-data" 2 tin_dir odd/sub local start --plan
contains "  refused where it is named" "$ERR" "nook.yaml:2:12: cannot read"
# a directory removed under the shell: no project, the default VM
mkdir -p gone
expect_rc "a deleted current directory" 1 sh -c 'cd "$1" && rmdir "$1" && exec "$2" local status --json' _ "$WORK/gone" "$NOOK"
contains "  is the default VM" "$OUT" "'default'"
# values echoed in messages carry no terminal escapes
printf 'name: dev\nmemory: "\\e]0;owned\\a\\e[2J"\n' > odd/nook.yaml
expect_rc "an escape sequence in a value" 2 in_dir odd local start --plan
check "  is shown escaped" sh -c 'printf %s "$1" | grep -q "x1b\]0;owned" && ! printf %s "$1" | grep -q "$(printf "\033")"' _ "$ERR"
# the file's boot: disk and --kernel: refused once merged
printf 'name: bd\nboot: disk\n' > odd/nook.yaml
expect_rc "--kernel over the file's boot: disk is refused" 2 in_dir odd local start --plan --kernel nook.yaml
contains "  as a start refuses it" "$ERR" "a kernel is for direct boot, not boot disk"
# a subnet too small for the nodes: said for the cluster
printf 'name: many\nsubnet: 10.81.0.0/29\nnodes: 10\n' > odd/nook.yaml
expect_rc "a subnet too small for the nodes" 1 in_dir odd local start --plan
contains "  names the cluster" "$ERR" "cluster many: node 10 does not fit"
# the plan says all a start would use
printf 'name: full\nports: ["8080:80", "127.0.0.1:0:22/udp"]\naccel: tcg\ntimeout: 60\n' > odd/nook.yaml
expect_rc "--plan --json of one VM" 0 in_dir odd local start --plan --json
check "  new at the top" test "$(echo "$OUT" | json 'd["new"]')" = True
check "  the ports, not a count" test "$(echo "$OUT" | json '",".join(d["nodes"][0]["ports"])')" = "127.0.0.1:8080:80/tcp,127.0.0.1:0:22/udp"
check "  accel and timeout" test "$(echo "$OUT" | json 'd["nodes"][0]["accel"] + str(d["nodes"][0]["timeout_s"])')" = tcg60
contains "  the file" "$(echo "$OUT" | json 'd["file"]')" "nook.yaml"
expect_rc "the text plan" 0 in_dir odd local start --plan
contains "  names the image and ports" "$OUT" "image debian-12, ports 127.0.0.1:8080:80/tcp"
# a path JSON cannot carry: said, not an empty success
printf '#cloud-config\n{}\n' > "odd/$(printf 'u\377.yaml')"
expect_rc "a user-data path that is not UTF-8" 1 in_dir odd local start x --plan --json --user-data "$(printf 'u\377.yaml')"
contains "  says why" "$ERR" "not UTF-8"
# --- a wrong nook.yaml and a start of a VM it is not about ---------------
# the file's error is still said; a start of another VM goes on without
# it (as status or shell of a NAME do); of its own VM, or when the file
# cannot tell whose it is, the error says so and how to start anyway
mkdir -p wrong
printf 'name: wrongvm\nmemory: lots\n' >wrong/nook.yaml
expect_rc "a wrong nook.yaml: start of another VM --plan" 0 in_dir wrong local start other --plan
contains "  plans it" "$OUT" "VM other (new)"
contains "  the file's error is said" "$ERR" "nook.yaml:2:9: bad memory 'lots'"
contains "  and that it is gone on without" "$ERR" "nook.yaml is VM wrongvm's, not other's: starting other without it"
expect_rc "  a start of its own VM is refused" 2 in_dir wrong local start wrongvm --plan
contains "  saying the file is what to fix" "$ERR" "VM wrongvm is the one nook.yaml describes: fix the file"
expect_rc "  so is a start without NAME" 2 in_dir wrong local start --plan
printf 'memory: lots\nnme: wrongvm\n' >wrong/nook.yaml
expect_rc "a wrong nook.yaml that names no VM: start other is refused" 2 in_dir wrong local start other --plan
contains "  saying why and how to start anyway" "$ERR" "nook.yaml is wrong (above), so it cannot tell whether it describes VM other: fix it, or start other from a directory outside the file's tree"
rm -rf wrong

# --- names of 32 characters: the tables' columns fit the longest --------
# aligned NAME TEXT K RE: in TEXT's lines matching RE, field K (from 0,
# split at blanks) starts at the same column
aligned() {
	if python3 - "$2" "$3" "$4" <<'PY'
import re, sys
text, k, pat = sys.argv[1], int(sys.argv[2]), sys.argv[3]
cols = {[m.start() for m in re.finditer(r"\S+", l)][k]
	for l in text.splitlines() if re.search(pat, l)}
sys.exit(0 if len(cols) == 1 else 1)
PY
	then ok "$1"; else fail "$1" "$2"; fi
}
g27=abcdefghijklmnopqrstuvwxyza
mkdir -p lw
qemu-img create -q -f raw lw/blank.img 64M
printf 'name: lw\nimage: blank.img\ncpus: 1\nmemory: 256M\naccel: tcg\nsubnet: 10.81.0.0/24\nnodes:\n  - group: a\n  - group: %s\n' "$g27" >lw/nook.yaml
expect_rc "a cluster with a node name of 32 characters: its plan" 0 in_dir lw local start --plan
aligned "  the address column lines up" "$OUT" 1 "^  lw-"
expect_rc "  started" 0 in_dir lw local start --no-wait
aligned "  the start's table lines up" "$OUT" 1 "^  lw-"
expect_rc "  list" 0 "$NOOK" local list
aligned "  list's STATE column lines up" "$OUT" 1 .
aligned "  list's ADDRESS column lines up" "$OUT" 5 "^NAME|^lw-"
contains "  lists the long one" "$OUT" "lw-$g27-1"
expect_rc "  deleted" 0 "$NOOK" local delete lw --force
finish
