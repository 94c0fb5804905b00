# bash completion for lanpeer.
#
# For this shell:   source <(lanpeer completion bash)
# For every shell:  lanpeer completion bash > ~/.local/share/bash-completion/completions/lanpeer
#
# lanpeer itself answers: the words typed so far, then the current word if it
# starts with '-', then --generate-bash-completion; it prints one candidate a
# line. An empty answer falls back to file names. urfave/cli runs a command
# line holding "--" instead of completing it, so after a "--" lanpeer is not
# asked, and a current word of "--" is passed as "-".

_lanpeer() {
    local cur=${COMP_WORDS[COMP_CWORD]}
    local -a words=("${COMP_WORDS[@]:0:COMP_CWORD}")
    local w
    for w in "${words[@]}"; do
        [[ $w == -- ]] && return 0
    done
    if [[ $cur == -- ]]; then
        words+=(-) # the same candidates, without a "--" on the command line
    elif [[ $cur == -* ]]; then
        words+=("$cur")
    fi
    local out
    out=$("${words[0]}" "${words[@]:1}" --generate-bash-completion 2>/dev/null) || return 0
    local IFS=$'\n'
    COMPREPLY=($(compgen -W "$out" -- "$cur"))
}

complete -o default -F _lanpeer lanpeer
