echo "$(hello 'CI farm') $VERSION"
