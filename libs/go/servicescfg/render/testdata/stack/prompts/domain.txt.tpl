Domain for {{ .Project }} ({{ .Env }}){{ with .Config.CODEXK8S_DOMAIN }} [{{ . }}]{{ end }}: 
