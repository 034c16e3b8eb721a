# bash completion for nook(1)                               -*- shell-script -*-
# Installed as share/bash-completion/completions/nook. Commands and
# subcommands are listed here; each command's options are read from its
# own --help, and VM, cluster and image names from nook's --json listings,
# so they are the nook's being completed.

# The subcommands of "$1" (a command, or "local snapshot").
_nook_subcommands()
{
	case $1 in
	local) echo "start stop suspend pause unpause status list delete logs snapshot prune" ;;
	"local snapshot") echo "save restore list rm" ;;
	images) echo "build import pull export list rm" ;;
	cidata) echo "build show" ;;
	port) echo "add rm list" ;;
	export) echo "libvirt" ;;
	esac
}

# The options "$1 ... --help" shows for subcommand $2: the words that
# start an option line or a usage's [--option], not one a sentence
# mentions ('--cold' in suspend's). A usage line for other subcommands
# (snapshot list's [--json] in save's help) does not count, and images
# lists every subcommand in one help: only $2's lines count.
_nook_options()
{
	local nook=$1 sub=$2
	shift 2
	"$nook" "$@" --help 2>/dev/null |
		awk -v cmd="$1" -v want="$sub" '
			function names(s, n, w, i) {
				n = split(s, w, /[ |]+/)
				for (i = 1; i <= n; i++) if (w[i] == want) return 1
				return 0
			}
			/^(usage:)? *nook / && want != "" && !names($0) { next }
			cmd != "images" { print; next }
			/^  [a-z]/ { on = $1 == want } /^[^ ]/ { on = 0 } on' |
		grep -oE -- '(^ *|[[|] ?|, )--[a-z][a-z0-9-]*' |
		grep -oE -- '--[a-z][a-z0-9-]*' | sort -u
}

# Options that take a value: their value is not a positional word.
_nook_takes_value()
{
	case $1 in
	--image | --cpus | --memory | --disk | --user-data | --network-config | \
		--port | --boot | --kernel | --initrd | --append | --accel | --cpu | \
		--timeout | --nodes | --subnet | --user | --workdir | --exclude | \
		--chown | --cache | --name | --cmdline | --sha256 | --sha512 | \
		--checksums | --base-url | --output | --meta-data | --vendor-data | \
		--instance-id | --hostname | --ssh-authorized-key | --file | \
		--connect | --pool | --uplink | --virt-type | --log-dir | \
		-o | -u | -m | -N | -V | -i | -H | -k | -f | -c)
		return 0 ;;
	esac
	return 1
}

# VM and cluster names, from 'nook local list --json' (an array of
# objects, one key a line: "name", and "cluster" for a node's cluster).
_nook_vm_names()
{
	"$1" local list --json 2>/dev/null |
		sed -n 's/^    "\(name\|cluster\)": "\([^"]*\)".*/\2/p' | sort -u
}

# Image names, from 'nook images list --json'.
_nook_image_names()
{
	"$1" images list --json 2>/dev/null |
		sed -n 's/^    "name": "\([^"]*\)".*/\1/p'
}

_nook()
{
	local cur prev words cword
	if declare -F _init_completion >/dev/null 2>&1; then
		_init_completion -n = || return
	else
		words=("${COMP_WORDS[@]}")
		cword=$COMP_CWORD
		cur=${COMP_WORDS[COMP_CWORD]}
		prev=${COMP_WORDS[COMP_CWORD - 1]}
	fi
	local nook=${words[0]} i w skip=0 dashdash=0
	local -a pos=()

	# the positional words before the one being completed
	for ((i = 1; i < cword; i++)); do
		w=${words[i]}
		if ((skip)); then
			skip=0
			continue
		fi
		case $w in
		--) dashdash=1; break ;;
		--*=*) ;;
		-*) _nook_takes_value "$w" && skip=1 ;;
		*) pos+=("$w") ;;
		esac
	done
	# after "--" (shell COMMAND, ...): the guest's words, not ours
	((dashdash)) && return

	local cmd=${pos[0]-} sub=${pos[1]-} subs
	if [[ -z $cmd ]]; then
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "--help --version" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "cidata console doctor export help
				images init local port shell ssh-config sync version" \
				-- "$cur"))
		fi
		return
	fi
	subs=$(_nook_subcommands "$cmd")
	if [[ $cmd == local && $sub == snapshot ]]; then
		cmd="local snapshot"
		sub=${pos[2]-}
		pos=("${pos[@]:1}")
	fi
	if [[ -n $subs && -z $sub ]]; then
		subs=$(_nook_subcommands "$cmd")
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "--help" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$subs" -- "$cur"))
		fi
		return
	fi

	# an option's value
	case $prev in
	--image)
		COMPREPLY=($(compgen -W "$(_nook_image_names "$nook")" -- "$cur"))
		_nook_files
		return ;;
	--boot) COMPREPLY=($(compgen -W "disk direct" -- "$cur")); return ;;
	--accel) COMPREPLY=($(compgen -W "auto kvm tcg" -- "$cur")); return ;;
	--user-data | --network-config | --kernel | --initrd | --output | \
		--meta-data | --vendor-data | --ssh-authorized-key | -o | -u | \
		-m | -N | -V | -k)
		_nook_files; return ;;
	--cache | --workdir | --log-dir) _nook_dirs; return ;;
	--virt-type) COMPREPLY=($(compgen -W "auto kvm qemu" -- "$cur")); return ;;
	esac
	_nook_takes_value "$prev" && return

	if [[ $cur == -* ]]; then
		# the options the command's own --help names
		local -a args=($cmd)
		[[ -n $subs ]] && args+=("$sub")
		COMPREPLY=($(compgen -W "$(_nook_options "$nook" "$sub" \
			"${args[@]}")" -- "$cur"))
		return
	fi

	# the positional word: which one is it?
	local n=$((${#pos[@]} - (${#subs} ? 2 : 1)))
	case $cmd in
	help)
		((n == 0)) && COMPREPLY=($(compgen -W "cidata console doctor
			export help images init local port shell ssh-config sync
			version" -- "$cur")) ;;
	local | "local snapshot" | port | shell | console | ssh-config | export)
		case $cmd/$sub in
		local/list | local/prune) ;;
		*) ((n == 0)) && COMPREPLY=($(compgen -W "$(_nook_vm_names "$nook")" -- "$cur")) ;;
		esac ;;
	sync)
		if ((n == 0)); then
			COMPREPLY=($(compgen -W "$(_nook_vm_names "$nook")" -- "$cur"))
		fi
		_nook_files ;;
	images)
		case $sub in
		rm | export) ((n == 0)) && COMPREPLY=($(compgen -W "$(_nook_image_names "$nook")" -- "$cur")) ;;&
		export) ((n == 1)) && _nook_files ;;
		import) _nook_files ;;
		esac ;;
	cidata) _nook_files ;;
	esac
}

# Add file names (or directories) to COMPREPLY.
_nook_files()
{
	local IFS=$'\n'
	compopt -o filenames 2>/dev/null
	COMPREPLY+=($(compgen -f -- "$cur"))
}
_nook_dirs()
{
	local IFS=$'\n'
	compopt -o filenames 2>/dev/null
	COMPREPLY+=($(compgen -d -- "$cur"))
}

complete -F _nook nook
