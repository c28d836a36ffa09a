"""Pure planning: desired resources + live state -> Plan. Never talks to a server."""
