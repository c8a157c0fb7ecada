#!/bin/sh
echo "demo tool ran"
