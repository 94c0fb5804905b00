#compdef lanpeer
# zsh completion for lanpeer.
#
# For this shell (after compinit):  source <(lanpeer completion zsh)
# For every shell:                  lanpeer completion zsh > "${fpath[1]}/_lanpeer"
#
# lanpeer itself answers: the words typed so far, then the current word if it
# starts with '-', then --generate-bash-completion; it prints one candidate a
# line. An empty answer falls back to file names. urfave/cli runs a command
# line holding "--" instead of completing it, so after a "--" lanpeer is not
# asked, and a current word of "--" is passed as "-".

_lanpeer() {
  local cur=${words[CURRENT]}
  local -a args opts
  args=("${(@)words[1,CURRENT-1]}")
  if (( ${args[(Ie)--]} )); then
    _files
    return
  fi
  if [[ $cur == -- ]]; then
    args+=(-) # the same candidates, without a "--" on the command line
  elif [[ $cur == -* ]]; then
    args+=("$cur")
  fi
  opts=("${(@f)$("${args[1]}" "${(@)args[2,-1]}" --generate-bash-completion 2>/dev/null)}")
  if [[ -n ${opts[1]} ]]; then
    compadd -a opts
  else
    _files
  fi
}

if [[ ${funcstack[1]} == _lanpeer ]]; then
  _lanpeer "$@"
else
  compdef _lanpeer lanpeer
fi
